/**
 * The WorkerPool's events, typed. Names are namespaced: `task:*`, `lease:*`, `pool:*`.
 */
import { EventEmitter } from 'node:events'
import type { FinalStatus } from '../types.js'

/** Every event a WorkerPool emits, with its payload. */
export interface WorkerPoolEvents {
  /** A task started running (attempt 1, 2, …). */
  'task:start': [{ id: string; name: string; queue: string; attempt: number }]
  /** A task ended: its outcome's status, or `retry` when it will run again. */
  'task:end': [
    { id: string; name: string; queue: string; status: FinalStatus | 'retry'; ms: number },
  ]
  /** A running task reported progress with `this.progress(value)` (local to this pool). */
  'task:progress': [{ id: string; name: string; queue: string; value: unknown }]
  /** The backend refused a finish or renewal: the task's lease had lapsed and it was given up. */
  'lease:lost': [{ id: string; queue: string }]
  /** The sweep expired or retried tasks whose lease lapsed. */
  'pool:swept': [{ queue: string; count: number }]
  /** The backend cannot keep its guarantees as configured (e.g. Redis evicts keys); what to change. */
  'pool:warning': [{ queue: string; message: string }]
  /** A backend call failed; the pool retries. */
  'pool:error': [Error]
}

/** An EventEmitter typed by an event map. */
export class TypedEmitter<E extends { [K in keyof E]: unknown[] }> {
  readonly #ee = new EventEmitter()

  /** Adds a listener. */
  on<K extends keyof E & string>(event: K, listener: (...args: E[K]) => void): this {
    this.#ee.on(event, listener as (...args: unknown[]) => void)
    return this
  }

  /** Adds a one-time listener. */
  once<K extends keyof E & string>(event: K, listener: (...args: E[K]) => void): this {
    this.#ee.once(event, listener as (...args: unknown[]) => void)
    return this
  }

  /** Removes a listener. */
  off<K extends keyof E & string>(event: K, listener: (...args: E[K]) => void): this {
    this.#ee.off(event, listener as (...args: unknown[]) => void)
    return this
  }

  /** True when `event` has listeners (so a payload is built only when someone listens). */
  protected listens(event: keyof E & string): boolean {
    return this.#ee.listenerCount(event) > 0
  }

  protected emit<K extends keyof E & string>(event: K, ...args: E[K]): void {
    this.#ee.emit(event, ...args)
  }
}
