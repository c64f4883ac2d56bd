/**
 * The WorkerPool's events, typed. Names are namespaced: `task:*`, `lease:*`, `pool:*`.
 */
import { WorqError } from '../errors.js'
import { remoteError } from '../remote-error.js'
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

/**
 * A listener of a pool's events (or of its child processes' events) threw, or returned a promise
 * that rejected: reported as `pool:error`, and the pool went on. Code `ERR_WORQ_LISTENER`; `cause`
 * is what the listener threw, `event` the event it was listening to.
 */
export class ListenerError extends WorqError {
  /** The event whose listener threw, e.g. `task:end`. */
  readonly event: string
  constructor(event: string, cause: unknown) {
    const { name, message } = remoteError(cause)
    super(
      'ERR_WORQ_LISTENER',
      `a listener of "${event}" threw ${name}: ${message}; the pool went on (catch errors in your listeners)`,
      { cause },
    )
    this.event = event
  }
}

type Listener = (...args: any[]) => unknown

/**
 * An event emitter typed by an event map, whose listeners are isolated: one that throws (or whose
 * promise rejects) does not keep the others from being called, and its error never reaches the
 * code that emitted the event (a lane's loop, the backend's control channel, a caller's
 * `cancel()`): it goes to {@link TypedEmitter.listenerThrew}.
 */
export class TypedEmitter<E extends { [K in keyof E]: unknown[] }> {
  readonly #listeners = new Map<string, Array<{ fn: Listener; once: boolean }>>()

  /** Adds a listener. */
  on<K extends keyof E & string>(event: K, listener: (...args: E[K]) => void): this {
    return this.#add(event, listener, false)
  }

  /** Adds a one-time listener. */
  once<K extends keyof E & string>(event: K, listener: (...args: E[K]) => void): this {
    return this.#add(event, listener, true)
  }

  /** Removes a listener (the one added last, when it was added more than once). */
  off<K extends keyof E & string>(event: K, listener: (...args: E[K]) => void): this {
    const list = this.#listeners.get(event)
    const i = list ? list.findLastIndex(l => l.fn === listener) : -1
    if (i >= 0) list!.splice(i, 1)
    return this
  }

  #add(event: string, fn: Listener, once: boolean): this {
    let list = this.#listeners.get(event)
    if (!list) this.#listeners.set(event, (list = []))
    list.push({ fn, once })
    return this
  }

  /** True when `event` has listeners (so a payload is built only when someone listens). */
  protected listens(event: keyof E & string): boolean {
    return (this.#listeners.get(event)?.length ?? 0) > 0
  }

  /**
   * Calls `event`'s listeners with `args`, in the order they were added, each on its own: a throw
   * or a rejected promise of one goes to listenerThrew(). Never throws.
   */
  protected emit<K extends keyof E & string>(event: K, ...args: E[K]): void {
    const list = this.#listeners.get(event)
    if (!list || list.length === 0) return
    // Listeners added or removed by a listener take effect from the next emit.
    for (const entry of list.slice()) {
      if (entry.once) {
        const i = list.indexOf(entry)
        if (i >= 0) list.splice(i, 1)
      }
      try {
        const returned = entry.fn(...args)
        if (typeof (returned as PromiseLike<unknown> | undefined)?.then === 'function')
          (returned as PromiseLike<unknown>).then(undefined, (err: unknown) =>
            this.#threw(event, err, args),
          )
      } catch (err) {
        this.#threw(event, err, args)
      }
    }
  }

  #threw(event: string, err: unknown, args: unknown[]): void {
    try {
      this.listenerThrew(event, err, args)
    } catch {
      // Nowhere left to report it: the library never prints.
    }
  }

  /**
   * A listener of `event` (called with `args`) threw `err`. Here it is dropped (the library never
   * prints); the pool reports it as `pool:error`.
   */
  protected listenerThrew(_event: string, _err: unknown, _args: unknown[]): void {}
}
