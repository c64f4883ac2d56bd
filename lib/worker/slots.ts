/**
 * A pool's slots: the tasks it runs now and the ones it holds ahead (prefetched), how each run
 * starts and ends, and what happens to a run that is cancelled, loses its lease or is handed back
 * at stop. A lane's loop (lane.ts) moves tasks between the backend and these slots.
 */
import type { Finish, ReservedTask } from '../backends/backend.js'
import { expiredOutcome, outcomeStatus } from '../outcome.js'
import { LeaseLost, TaskCancelled } from '../errors.js'
import { isThenable } from '../resolve-args.js'
import { encodeValue } from '../serializer.js'
import { LazyAbort } from './abort.js'
import type { WorkerPoolEvents } from './events.js'
import type { FinalStatus } from '../types.js'
import type { Executor } from './executor.js'
import type { LeaseKeeper } from './leases.js'
import type { ProgressWriter } from './progress.js'

/** Average task duration under which a pool prefetches. */
const SHORT_TASK_MS = 5

/**
 * How long, and for how many ids, a cancel heard for a task this lane does not hold is kept: its
 * reservation may be on its way on another connection (a reply read after the message).
 */
const HEARD_MS = 10_000
const HEARD_MAX = 10_000

interface Running {
  task: ReservedTask
  started: number
  controller: LazyAbort
}

/** What the slots need from their pool. */
export interface SlotsHost {
  readonly workerId: string
  readonly queue: string
  readonly executor: Executor
  readonly leases: LeaseKeeper
  readonly progress: ProgressWriter
  /** False once the pool stops taking work: buffered tasks no longer start. */
  readonly accepting: boolean
  /** A run ended with this finish (to send with the next exchange). */
  ended(finish: Finish): void
  emit<K extends keyof WorkerPoolEvents & string>(event: K, ...args: WorkerPoolEvents[K]): void
  listens(event: keyof WorkerPoolEvents & string): boolean
}

export class Slots {
  readonly running = new Map<string, Running>()
  /** Reserved, not started: waits for a free slot. */
  buffer: ReservedTask[] = []
  /** Moving average of recent task durations in ms (undefined until one ended). */
  #recentMs: number | undefined
  /** Ids of runs cancelled while they ran: their end is not reported as a finish's status. */
  readonly #cancelled = new Set<string>()
  /**
   * Ids of cancelled runs whose finish went to the lane and has not been through an exchange yet:
   * the backend refuses it, and where it cannot tell it from a lost lease's (an `ignoreResult`
   * task, whose record the cancel removed) it reports it stale, which is no lease lost.
   */
  readonly #cancelledEnds = new Set<string>()
  /** Ids whose lease loss was reported by the keeper and whose finish is still to come. */
  readonly #lost = new Set<string>()
  readonly #idle = new Set<() => void>()
  /** Cancels heard for ids this lane did not hold (id → when heard), oldest first. */
  readonly #heard = new Map<string, number>()

  constructor(
    private readonly host: SlotsHost,
    private readonly concurrency: number,
    private readonly prefetch: number,
  ) {}

  /** How many tasks to hold ahead now: `prefetch` while recent tasks are short, else none. */
  ahead(): number {
    return this.#recentMs !== undefined && this.#recentMs < SHORT_TASK_MS ? this.prefetch : 0
  }

  /** Slots an exchange may fill now (running, buffered and ahead counted). */
  free(): number {
    return Math.max(0, this.concurrency - this.running.size + this.ahead() - this.buffer.length)
  }

  /** Slots that could start a task at once. */
  startable(): number {
    return this.concurrency - this.running.size - this.buffer.length
  }

  /** Takes reserved tasks: their leases are renewed from now; they start while slots are free. */
  add(tasks: readonly ReservedTask[]): void {
    for (const task of tasks) {
      this.host.leases.add(task)
      this.buffer.push(task)
    }
    this.fill()
  }

  /** Starts buffered tasks while slots are free. */
  fill(): void {
    while (this.host.accepting && this.buffer.length > 0 && this.running.size < this.concurrency)
      this.#start(this.buffer.shift()!)
  }

  /** Resolves when no task is running (now, or as soon as the running ones end). */
  onIdle(): Promise<void> {
    if (this.running.size === 0) return Promise.resolve()
    return new Promise(resolve => this.#idle.add(resolve))
  }

  /** Releases for others the buffered tasks that never started (each back first in line). */
  release(): Finish[] {
    // Each release goes to the front of the line: release the last first to keep the order.
    const finishes = this.buffer.reverse().map(task => {
      this.host.leases.delete(task.id)
      return { id: task.id, token: task.token, outcome: '', release: true }
    })
    this.buffer = []
    return finishes
  }

  /**
   * Gives up the runs still going at a stop's timeout: each finishes `expired` ("the worker
   * stopped"), or with attempts left goes back in line at once (no backoff) with that expiry as the
   * retry's reason. Each gets its `task:end`, and onIdle() waiters wake.
   */
  handBack(): Finish[] {
    const reason = 'the worker stopped before the task finished (stop timeout)'
    const finishes: Finish[] = []
    const now = Date.now()
    const runs = [...this.running.values()]
    this.running.clear()
    for (const { task, started, controller } of runs) {
      controller.abort(new Error(reason))
      const { id, token, name, attempt } = task
      const cancelled = this.#cancelled.delete(id)
      if (cancelled) this.#cancelledEnds.add(id)
      else this.host.progress.flush(id)
      const retry = attempt < task.attempts
      finishes.push({
        id,
        token,
        outcome: expiredOutcome(name, this.host.queue, id, reason, attempt),
        ...(retry && { retryAt: now }),
        runMs: now - started,
        waitMs: Math.max(0, started - task.dueAt),
        name,
        attempt,
      })
      this.host.leases.delete(id)
      this.#reportEnd(task, cancelled ? 'cancelled' : retry ? 'retry' : 'expired', now - started)
    }
    this.#wakeIdle()
    return finishes
  }

  /** Forgets everything (the backend is gone); onIdle() waiters wake. */
  clear(): void {
    this.running.clear()
    this.buffer = []
    this.#wakeIdle()
  }

  /** The keeper found the lease of `id` lost: abort its run. */
  leaseLost(id: string): void {
    const run = this.running.get(id)
    if (!run) return
    this.#lost.add(id)
    run.controller.abort(new LeaseLost(run.task.name))
  }

  /** True (once) when the lease loss of `id` was already reported. */
  takeLost(id: string): boolean {
    return this.#lost.delete(id)
  }

  /** True (once) when the finish of `id` was that of a run a cancel ended (see #cancelledEnds). */
  takeCancelledEnd(id: string): boolean {
    return this.#cancelledEnds.delete(id)
  }

  /** The task was cancelled: abort its run, or drop it unstarted. */
  cancel(id: string): void {
    const { queue } = this.host
    const run = this.running.get(id)
    if (run) {
      this.#cancelled.add(id)
      this.host.leases.delete(id)
      this.host.progress.forget(id)
      run.controller.abort(new TaskCancelled(run.task.name, queue, id))
      this.host.emit('task:cancelled', { id, name: run.task.name, queue })
      return
    }
    // Prefetched and cancelled before it started: drop it (the backend ended it already).
    const i = this.buffer.findIndex(t => t.id === id)
    if (i < 0) {
      this.#hear(id)
      return
    }
    const [task] = this.buffer.splice(i, 1)
    this.host.leases.delete(id)
    this.host.emit('task:cancelled', { id, name: task!.name, queue })
  }

  /**
   * The tasks among `tasks` whose cancel this lane heard before they reached it: each may be the
   * run that cancel ended (its reservation was read after the message), or a later task under the
   * same id, so the lane asks the backend whether its lease holds before starting it.
   */
  heardBefore(tasks: readonly ReservedTask[]): ReservedTask[] {
    if (this.#heard.size === 0) return []
    return tasks.filter(task => this.#heard.delete(task.id))
  }

  #hear(id: string): void {
    const now = Date.now()
    this.#heard.delete(id)
    this.#heard.set(id, now)
    for (const [old, at] of this.#heard) {
      if (at > now - HEARD_MS && this.#heard.size <= HEARD_MAX) break
      this.#heard.delete(old)
    }
  }

  #start(task: ReservedTask): void {
    const { queue } = this.host
    const started = Date.now()
    const controller = new LazyAbort()
    this.running.set(task.id, { task, started, controller })
    if (this.host.listens('task:start'))
      this.host.emit('task:start', { id: task.id, name: task.name, queue, attempt: task.attempt })
    const env = {
      workerId: this.host.workerId,
      controller,
      progress: (value: unknown) => this.#progress(task, value),
    }
    // A task that returned a value has ended already; its end is handled after this start's
    // caller is done starting (the same microtask turn an awaited run would take).
    const run = this.host.executor.run(task, queue, env)
    if (isThenable(run)) void Promise.resolve(run).then(f => this.#ended(task, started, f))
    else queueMicrotask(() => this.#ended(task, started, run))
  }

  #ended(task: ReservedTask, started: number, finish: Finish): void {
    const mine = this.running.get(task.id)
    if (mine?.task.token !== task.token) return // handed back at stop: the backend will refuse it
    this.running.delete(task.id)
    this.host.leases.delete(task.id)
    const cancelled = this.#cancelled.delete(task.id)
    // Its last progress goes before its finish (the same connection keeps the order).
    if (cancelled) this.#cancelledEnds.add(task.id)
    else this.host.progress.flush(task.id)
    const ms = Date.now() - started
    finish.runMs = ms
    finish.waitMs = Math.max(0, started - task.dueAt)
    finish.name = task.name
    finish.attempt = task.attempt
    this.#recentMs = this.#recentMs === undefined ? ms : 0.8 * this.#recentMs + 0.2 * ms
    // A cancelled run's finish is sent all the same: the backend refuses it without a report.
    this.host.ended(finish)
    this.fill()
    if (this.host.listens('task:end')) {
      const status = cancelled
        ? 'cancelled'
        : finish.retryAt !== undefined
          ? 'retry'
          : outcomeStatus(finish.outcome)
      this.#reportEnd(task, status, ms)
    }
    if (this.running.size === 0) this.#wakeIdle()
  }

  #reportEnd(task: ReservedTask, status: FinalStatus | 'retry', ms: number): void {
    const { id, name } = task
    this.host.emit('task:end', { id, name, queue: this.host.queue, status, ms })
  }

  #wakeIdle(): void {
    for (const resolve of this.#idle) resolve()
    this.#idle.clear()
  }

  /** A running task reported progress: the pool's event, and (coalesced) the backend. */
  #progress(task: ReservedTask, value: unknown): void {
    if (!this.running.has(task.id) || this.#cancelled.has(task.id)) return
    const { queue } = this.host
    this.host.emit('task:progress', { id: task.id, name: task.name, queue, value })
    let encoded: string
    try {
      encoded = encodeValue(value)
    } catch (err) {
      throw new TypeError(`the progress value cannot be sent: ${(err as Error).message}`, {
        cause: err,
      })
    }
    this.host.progress.report({ id: task.id, token: task.token, value: encoded })
  }
}
