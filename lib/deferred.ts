/**
 * Deferred<T>: the client's handle on a task's result.
 *
 * Reading never consumes the result: any number of waiters, in any number of processes, may read it
 * until its `resultTimeout` passes. `value` is what the last `wait`, `status` or `result` fetched.
 */
import { NoResultYet, type TaskFailure, WaitTimeout } from './errors.js'
import { expiredOutcome, outcomeStatus, readOutcome } from './outcome.js'
import type { TaskStatus } from './types.js'
import type { TaskState } from './backends/backend.js'

/** What a Deferred needs from the broker that made it. @internal */
export interface DeferredHost {
  /** Increments whenever outcome delivery was interrupted; a Deferred older than it re-checks. */
  readonly epoch: number
  status(queue: string, id: string): Promise<TaskState | null>
  cancel(queue: string, id: string): Promise<boolean>
  /** Marks `d` as waited on (so a delivery gap re-checks it) until `done` is called. */
  waiting(d: Deferred<unknown>): () => void
}

const kSettle = Symbol('worq.settle')
const kEpoch = Symbol('worq.epoch')

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
  #wake: Set<() => void> | undefined;
  [kEpoch]: number

  /** @internal Deferreds are made by a broker's enqueue. */
  constructor(host: DeferredHost, queue: string, name: string, id: string) {
    this.#host = host
    this.queue = queue
    this.name = name
    this.id = id
    this[kEpoch] = host.epoch
  }

  /** @internal Records an outcome delivered or fetched. */
  [kSettle](outcome: string): void {
    if (this.#outcome !== undefined) return
    this.#outcome = outcome
    this.#read = undefined
    const wakers = this.#wake
    this.#wake = undefined
    if (wakers) for (const wake of wakers) wake()
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
    this[kEpoch] = this.#host.epoch
    const state = await this.#host.status(this.queue, this.id)
    if (state === null) {
      const reason = 'the task and its result are gone (its resultTimeout passed)'
      this[kSettle](expiredOutcome(this.name, this.queue, this.id, reason))
    } else if (state.outcome !== undefined) {
      this[kSettle](state.outcome)
    } else {
      this.#live = state.status
    }
  }

  /**
   * Waits up to `ms` for the task to finish. True when it finished (completed, failed, expired or
   * cancelled): then `value` holds the outcome. False when time ran out.
   */
  wait(ms: number): Promise<boolean> {
    try {
      checkMs(ms)
    } catch (err) {
      return Promise.reject(err)
    }
    if (this.#outcome !== undefined) return Promise.resolve(true)
    if (this[kEpoch] !== this.#host.epoch) return this.#fetchThenWait(ms)
    return this.#waitFor(ms)
  }

  /** `wait` after a gap in delivery: fetch first, then wait if still unsettled. */
  async #fetchThenWait(ms: number): Promise<boolean> {
    await this.#fetch()
    return this.#outcome !== undefined || this.#waitFor(ms)
  }

  /** Waits for a delivery (one promise, one timer; none when `ms` is 0). */
  #waitFor(ms: number): Promise<boolean> {
    if (ms === 0) return Promise.resolve(false)
    // A gap in delivery while waiting is handled by the host, which re-fetches.
    const done = this.#host.waiting(this as Deferred<unknown>)
    return new Promise<boolean>(resolve => {
      const finish = () => {
        clearTimeout(timer)
        done()
        resolve(this.#outcome !== undefined)
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
    this.#read ??= readOutcome(this.#outcome)
    if (!this.#read.ok) throw this.#read.error
    return this.#read.value as T
  }

  /** True when this Deferred holds an outcome (no round trip). */
  get settled(): boolean {
    return this.#outcome !== undefined
  }

  /** Waits up to `ms` and returns the value; rejects with the task's failure or `WaitTimeout`. */
  result(ms: number): Promise<T> {
    return this.wait(ms).then(done => {
      if (!done) throw new WaitTimeout(this.name, this.queue, this.id, ms)
      return this.value
    })
  }

  /** Cancels the task if it has not started running. True when it was cancelled. */
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

/** @internal */
export const settle = (d: Deferred<unknown>, outcome: string): void => d[kSettle](outcome)

/** Checks a timeout argument. */
export function checkMs(ms: unknown, name = 'ms'): asserts ms is number {
  if (typeof ms !== 'number' || !(ms >= 0) || ms === Infinity)
    throw new TypeError(
      `Expected \`${name}\` to be a finite number of milliseconds ≥ 0, got ${String(ms)}`,
    )
}
