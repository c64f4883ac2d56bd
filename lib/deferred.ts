/**
 * Deferred<T>: the client's handle on a task's result.
 *
 * Reading never consumes the result: any number of waiters, in any number of processes, may read it
 * until its `resultTimeout` passes. `value` is what the last `wait`, `status` or `result` fetched.
 */
import { NoResultYet, type TaskFailure, WaitTimeout } from './errors.js'
import { callListener } from './listener.js'
import { expiredOutcome, outcomeStatus, readStoredOutcome } from './outcome.js'
import { markResultRefs } from './result-ref.js'
import type { TaskStatus } from './types.js'
import { MAX_TIMER_MS, type Backend, type TaskState } from './backends/backend.js'
import type { TaskInfo } from './task-info.js'

/** What a Deferred needs from the broker that made it. @internal */
export interface DeferredHost {
  /** Increments whenever outcome delivery was interrupted; a Deferred older than it re-checks. */
  readonly epoch: number
  /** Throws `BrokerClosed` once the broker that made the Deferred is closed. */
  open(): void
  status(queue: string, id: string): Promise<TaskState | null>
  cancel(queue: string, id: string): Promise<boolean>
  info(queue: string, id: string): Promise<TaskInfo | undefined>
  /**
   * Marks `d` as waited on (so a delivery gap re-checks it, and a close of the broker ends its
   * waits: {@link closeWaits}) until {@link DeferredHost.waitEnded}. A Deferred calls it when its
   * first wait under way begins, however many more then overlap it.
   */
  waitStarted(d: Deferred<unknown>): void
  /** Unmarks `d`: the last of its waits under way ended. */
  waitEnded(d: Deferred<unknown>): void
  /** The backend that holds the task: a call on another may not be able to see it. */
  readonly store: Backend
}

const kSettle = Symbol('worq.settle')
const kProgress = Symbol('worq.progress')
const kEpoch = Symbol('worq.epoch')
const kStore = Symbol('worq.store')
const kUnconfirmed = Symbol('worq.unconfirmed')
const kClose = Symbol('worq.close')

/** A task's result, to wait for, read, or pass as an argument to another call. */
export class Deferred<T = unknown> {
  /** The task id. */
  readonly id: string
  /** The dotted task name, e.g. `math.add`. */
  readonly name: string
  /** The queue the task was sent to. */
  readonly queue: string
  #host: DeferredHost
  #outcome: string | undefined
  #read: { ok: true; value: unknown } | { ok: false; error: TaskFailure } | undefined
  #wake: Set<() => void> | undefined
  /** The waits under way (`wait`, `result`): the host marks this Deferred while there are any. */
  #waits = 0
  /** The broker that made this Deferred closed while it was waited on (kClose). */
  #closedBy: Error | undefined
  #cached = false
  #progress: unknown
  #progressListeners: Set<(value: unknown) => void> | undefined
  /**
   * The backend has not shown this task yet: enqueued in a caller's transaction (`tx`) that may
   * not have committed, so an unknown id means "not visible yet", not "expired".
   */
  #unconfirmed = false;
  /** The host's epoch when this Deferred last heard from the backend. @internal */
  [kEpoch]: number

  /** @internal Deferreds are made by a broker's enqueue. */
  constructor(host: DeferredHost, queue: string, name: string, id: string) {
    this.#host = host
    this.queue = queue
    this.name = name
    this.id = id
    this[kEpoch] = host.epoch
  }

  /** @internal Records an outcome delivered or fetched (`cached`: it came from the result cache). */
  [kSettle](outcome: string, cached = false): void {
    if (this.#outcome !== undefined) return
    this.#outcome = outcome
    this.#cached = cached
    this.#read = undefined
    const wakers = this.#wake
    this.#wake = undefined
    if (wakers) for (const wake of wakers) wake()
  }

  /**
   * @internal The broker of `host` closed: the waits under way (if this Deferred is `host`'s and
   * holds no outcome) reject with `err`.
   */
  [kClose](host: DeferredHost, err: Error): void {
    if (host !== this.#host || this.#outcome !== undefined) return
    this.#closedBy = err
    const wakers = this.#wake
    this.#wake = undefined
    if (wakers) for (const wake of wakers) wake()
  }

  /** @internal Marks a Deferred whose task the backend may not show yet (a `tx` enqueue). */
  [kUnconfirmed](): void {
    this.#unconfirmed = true
    this.#live = 'pending'
  }

  /** @internal The backend that holds the task. */
  [kStore](): Backend {
    return this.#host.store
  }

  /** @internal Records a progress value delivered and tells the listeners, in order. */
  [kProgress](value: unknown): void {
    this.#progress = value
    if (this.#progressListeners)
      // A listener's throw or rejection is its own; the others still hear of the progress.
      for (const listener of [...this.#progressListeners]) callListener(listener, value)
  }

  /**
   * The latest progress value this process has seen (`this.progress(value)` in the task), or
   * undefined before any. `info()` reads it from the backend.
   */
  get progress(): unknown {
    return this.#progress
  }

  /**
   * Calls `listener` with each new progress value of the task, in order, wherever the task runs.
   * Values reported faster than they can be delivered may be coalesced; the latest always arrives
   * (docs/tasks.md). Returns a function that unsubscribes. A listener that throws, or returns a
   * promise that rejects (an `async` listener), is passed over: the others still hear, and the
   * failure is dropped, never an unhandled rejection; catch inside the listener to see it.
   */
  onProgress(listener: (value: unknown) => void): () => void {
    if (typeof listener !== 'function')
      throw new TypeError('Expected `listener` to be a function of the progress value')
    ;(this.#progressListeners ??= new Set()).add(listener)
    return () => {
      this.#progressListeners?.delete(listener)
    }
  }

  /** True when the outcome came from the result cache (or an identical call it waited for). */
  get cached(): boolean {
    return this.#cached
  }

  /** What the backend knows of the task now (undefined once its outcome expired). */
  info(): Promise<TaskInfo<T> | undefined> {
    return this.#host.info(this.queue, this.id) as Promise<TaskInfo<T> | undefined>
  }

  /** The task's status, fetched from the backend unless this Deferred already holds an outcome. */
  async status(): Promise<TaskStatus> {
    if (this.#outcome !== undefined) return outcomeStatus(this.#outcome)
    await this.#fetch()
    if (this.#outcome !== undefined) return outcomeStatus(this.#outcome)
    return this.#live
  }

  #live: TaskStatus = 'enqueued'

  async #fetch(): Promise<void> {
    // The epoch of before the read, recorded once it succeeded: a read that fails leaves this
    // Deferred behind the latest gap, so its next wait reads again.
    const epoch = this.#host.epoch
    const state = await this.#host.status(this.queue, this.id)
    this[kEpoch] = epoch
    if (state === null) {
      // A task enqueued in a transaction that has not committed (or rolled back) is not visible:
      // it stays unsettled ('pending') until the backend shows it.
      if (this.#unconfirmed) return
      const reason = 'the task and its result are gone (its resultTimeout passed)'
      this[kSettle](expiredOutcome(this.name, this.queue, this.id, reason))
    } else if (state.outcome !== undefined) {
      this.#unconfirmed = false
      this[kSettle](state.outcome, state.cached === true)
    } else {
      this.#unconfirmed = false
      this.#live = state.status
    }
  }

  /**
   * Waits up to `ms` for the task to finish. True when it finished (completed, failed, expired or
   * cancelled): then `value` holds the outcome. False when time ran out. Rejects with
   * `BrokerClosed` once the broker that made this Deferred is closed (at once for a wait under
   * way), unless this Deferred already holds the outcome.
   */
  wait(ms: number): Promise<boolean> {
    try {
      checkMs(ms)
      if (this.#outcome !== undefined) return Promise.resolve(true)
      this.#host.open()
    } catch (err) {
      return Promise.reject(err)
    }
    if (this[kEpoch] !== this.#host.epoch) return this.#fetchThenWait(ms)
    return this.#waitFor(ms)
  }

  /** `wait` after a gap in delivery: fetch first, then wait if still unsettled. */
  async #fetchThenWait(ms: number): Promise<boolean> {
    await this.#fetch()
    if (this.#outcome !== undefined) return true
    this.#host.open() // the broker closed during the fetch: BrokerClosed, not a wait nothing ends
    return this.#waitFor(ms)
  }

  /** Waits for a delivery (one promise, one timer; none when `ms` is 0). */
  #waitFor(ms: number): Promise<boolean> {
    if (ms === 0) return Promise.resolve(false)
    // A gap in delivery while waiting is handled by the host, which re-fetches; a close of the
    // broker ends the wait with BrokerClosed (kClose). The host marks this Deferred while any of
    // its waits is under way: counted here, so overlapping waits cost an increment each, and the
    // end of one does not unmark the others.
    if (this.#waits++ === 0) this.#host.waitStarted(this as Deferred<unknown>)
    return new Promise<boolean>((resolve, reject) => {
      // Runs once: from the timer (then it leaves #wake), or from a settle or close (which take
      // #wake whole and clear the timer).
      const finish = () => {
        clearTimeout(timer)
        this.#wake?.delete(finish)
        if (--this.#waits === 0) this.#host.waitEnded(this as Deferred<unknown>)
        if (this.#outcome === undefined && this.#closedBy) reject(this.#closedBy)
        else resolve(this.#outcome !== undefined)
      }
      const timer = setTimeout(finish, ms)
      ;(this.#wake ??= new Set()).add(finish)
    })
  }

  /**
   * The result, as the last `wait`, `status` or `result` fetched it. Throws the task's
   * `TaskFailure` (`TaskExpired`, `TaskCancelled`) when it did not complete, and `NoResultYet`
   * when no outcome was fetched yet.
   */
  get value(): T {
    if (this.#outcome === undefined) throw new NoResultYet(this.name, this.queue, this.id)
    this.#read ??= readStoredOutcome(this.#outcome, this.name, this.queue, this.id)
    if (!this.#read.ok) throw this.#read.error
    return this.#read.value as T
  }

  /** True when this Deferred holds an outcome (no round trip). */
  get settled(): boolean {
    return this.#outcome !== undefined
  }

  /**
   * Waits up to `ms` and returns the value; rejects with the task's failure or `WaitTimeout` (or
   * `BrokerClosed`, as `wait` does).
   */
  result(ms: number): Promise<T> {
    return this.wait(ms).then(done => {
      if (!done) throw new WaitTimeout(this.name, this.queue, this.id, ms)
      return this.value
    })
  }

  /**
   * Cancels the task: a pending or enqueued one never runs; a running one's `signal` aborts with
   * `TaskCancelled` and whatever it returns is dropped. Waiters get `TaskCancelled`; dependents
   * cascade as for a failure. True when this call cancelled it; false when it had already ended.
   */
  async cancel(): Promise<boolean> {
    const cancelled = await this.#host.cancel(this.queue, this.id)
    if (cancelled) await this.#fetch()
    return cancelled
  }

  /** @internal Called by the host when delivery was interrupted while this Deferred was waited on. */
  async recheck(): Promise<void> {
    if (this.#outcome === undefined) await this.#fetch()
  }

  /** `<Deferred math.add [default:<id>] completed>` (the last status known here). */
  toString(): string {
    const status = this.#outcome !== undefined ? outcomeStatus(this.#outcome) : this.#live
    return `<Deferred ${this.name} [${this.queue}:${this.id}] ${status}>`
  }

  /** The outcome string, when this Deferred holds one. @internal */
  get outcome(): string | undefined {
    return this.#outcome
  }
}

// The codec sends a Deferred argument as a reference to its task (result-ref.ts).
markResultRefs(Deferred)

/** @internal */
export const settle = (d: Deferred<unknown>, outcome: string, cached = false): void =>
  d[kSettle](outcome, cached)

/** Marks `d` as made in a caller's transaction: unknown to the backend is not expired. @internal */
export const markUnconfirmed = (d: Deferred<unknown>): void => d[kUnconfirmed]()

/** The backend that holds `d`'s task. @internal */
export const storeOf = (d: Deferred<unknown>): Backend => d[kStore]()

/**
 * Ends the waits under way on the Deferreds of `host` among `waited` with `err` (its broker
 * closed). @internal
 */
export function closeWaits(
  waited: Iterable<Deferred<unknown>>,
  host: DeferredHost,
  err: Error,
): void {
  for (const d of [...waited]) d[kClose](host, err)
}

/** @internal */
export const reportProgress = (d: Deferred<unknown>, value: unknown): void => d[kProgress](value)

/** Checks a timeout argument. */
export function checkMs(ms: unknown, name = 'ms'): asserts ms is number {
  if (typeof ms !== 'number' || !(ms >= 0 && ms <= MAX_TIMER_MS))
    throw new TypeError(
      `Expected \`${name}\` to be a number of milliseconds from 0 to ${MAX_TIMER_MS} (about 24.8 days: a timer's limit), got ${String(ms)}`,
    )
}
