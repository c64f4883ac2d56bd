/**
 * The WorkerPool's events, typed. Names are namespaced: `task:*`, `lease:*`, `pool:*`.
 */
import { EventEmitter } from 'node:events'
import type { FinalStatus } from '../types.js'

/** Every event a WorkerPool emits, with its payload. */
export interface WorkerPoolEvents {
  /** A task started running (attempt 1, 2, …). */
  'task:start': [
    {
      /** The task's id. */
      id: string
      /** Its dotted name, e.g. `math.add`. */
      name: string
      /** Its queue. */
      queue: string
      /** Which run this is: 1 for the first. */
      attempt: number
    },
  ]
  /** A task ended: its outcome's status, or `retry` when it will run again. */
  'task:end': [
    {
      /** The task's id. */
      id: string
      /** Its dotted name. */
      name: string
      /** Its queue. */
      queue: string
      /** How the run ended, or `retry` when the task will run again. */
      status: FinalStatus | 'retry'
      /** How long the run took, in ms. */
      ms: number
    },
  ]
  /** A running task reported progress with `this.progress(value)`. */
  'task:progress': [
    {
      /** The task's id. */
      id: string
      /** Its dotted name. */
      name: string
      /** Its queue. */
      queue: string
      /** What the task passed to `progress`. */
      value: unknown
    },
  ]
  /**
   * A task this pool runs (or holds ahead, or whose reservation reached it after the cancel) was
   * cancelled: its `signal` aborts with `TaskCancelled`; one not started is dropped.
   */
  'task:cancelled': [
    {
      /** The task's id. */
      id: string
      /** Its dotted name. */
      name: string
      /** Its queue. */
      queue: string
    },
  ]
  /**
   * The queue was paused (or was paused when the pool started): this pool starts nothing new
   * until it is resumed, and hands back the tasks it held ahead.
   */
  'pool:paused': [
    {
      /** The queue paused. */
      queue: string
      /** Always true here: the queue's pause as this pool now knows it. */
      paused: true
    },
  ]
  /** The queue was resumed. */
  'pool:resumed': [
    {
      /** The queue resumed. */
      queue: string
      /** Always false here: the queue's pause as this pool now knows it. */
      paused: false
    },
  ]
  /** The backend refused a finish or renewal: the task's lease had lapsed and it was given up. */
  'lease:lost': [
    {
      /** The task's id. */
      id: string
      /** Its queue. */
      queue: string
    },
  ]
  /** The sweep expired or retried tasks whose lease lapsed. */
  'pool:swept': [
    {
      /** The queue swept. */
      queue: string
      /** How many tasks were expired or retried. */
      count: number
    },
  ]
  /** The backend cannot keep its guarantees as configured (e.g. Redis evicts keys); what to change. */
  'pool:warning': [
    {
      /** The queue concerned. */
      queue: string
      /** What is wrong and what to change. */
      message: string
    },
  ]
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

  /** Calls `event`'s listeners with `args`. */
  protected emit<K extends keyof E & string>(event: K, ...args: E[K]): void {
    this.#ee.emit(event, ...args)
  }
}
