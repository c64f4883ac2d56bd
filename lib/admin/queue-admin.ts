/**
 * The management half of a Broker: its queue's size, purge and counts, its tasks (info, listing,
 * cancel, the types the workers expose), metrics, settings, pause, limits and schedules. Each is a
 * round trip to the backend the broker opens; the broker (broker.ts) adds exposing, enqueueing,
 * retry, events and its lifecycle.
 */
import type { Backend, Limit, MinuteCounts, QueueInfo, QueueSettings } from '../backends/backend.js'
import { PayloadTooLarge } from '../errors.js'
import { checkId } from '../options.js'
import type { ResultHub } from '../results.js'
import { listQuery, toTaskInfo, type TaskFilter, type TaskInfo } from '../task-info.js'
import { summarize, type QueueMetrics } from '../metrics/summary.js'
import { taskTypes } from './retry.js'
import { storedSchedule } from './schedule-call.js'
import { checkLimit, checkLimitName } from './limits.js'
import { scheduleInfo, type Schedule, type ScheduleInfo } from './schedules.js'
import { checkSettings } from './settings.js'

/** A task name the live workers of a queue expose. */
export interface TaskType {
  /** The dotted task name. */
  name: string
  /** How many live workers expose it. */
  workers: number
}

/** The queue management methods of a Broker. @internal */
export abstract class QueueAdmin {
  /** The queue name. */
  abstract readonly name: string

  /** The backend and its result hub, once open; rejects with `BrokerClosed` once closed. @internal */
  abstract backend(): Promise<{ backend: Backend; hub: ResultHub }>

  /** Tasks waiting to run: enqueued, delayed and pending dependents. */
  async size(): Promise<number> {
    return (await this.#backend()).size(this.name)
  }

  /** Discards every waiting task; their Deferreds and dependents become `cancelled`. Returns how many. */
  async purge(): Promise<number> {
    return (await this.#backend()).purge(this.name)
  }

  /** Counts of the queue's tasks, whether it is paused, and its live workers. */
  async inspect(): Promise<QueueInfo> {
    return (await this.#backend()).inspect(this.name)
  }

  // ---- tasks ----

  /** What the backend knows of task `id`; undefined when it knows nothing (or no longer). */
  async task(id: string): Promise<TaskInfo | undefined> {
    checkId(id)
    const stored = await (await this.#backend()).info(this.name, id)
    return stored ? toTaskInfo(stored, this.name) : undefined
  }

  /**
   * Tasks of the queue, newest first: by `status`, `name` (exact, or a prefix ending in `.`), age
   * (`olderThan`, `newerThan`), paged with `limit` (100) and `offset`. Finished tasks are listed
   * while their outcome is kept. Needs the queue's `listing` setting (on by default).
   */
  async tasks(filter?: TaskFilter): Promise<TaskInfo[]> {
    const query = listQuery(filter)
    const found = await (await this.#backend()).list(this.name, query)
    return found.map(s => toTaskInfo(s, this.name))
  }

  /** Every task name the live workers of the queue expose, with how many workers expose it. */
  async types(): Promise<TaskType[]> {
    return taskTypes((await this.inspect()).workers)
  }

  /**
   * Cancels task `id` if it is pending, enqueued or processing (a running task's `signal` aborts
   * with `TaskCancelled`). True when this call cancelled it; false when it had ended or is unknown.
   */
  async cancel(id: string): Promise<boolean> {
    checkId(id)
    return (await this.#backend()).cancel(this.name, id)
  }

  // ---- metrics ----

  /**
   * Per-minute counts of the last `minutes` minutes (60 by default), the tasks in each state now,
   * wait and run time percentiles over those minutes, and totals. See docs/metrics.md.
   */
  async metrics(options: { minutes?: number } = {}): Promise<QueueMetrics> {
    if (typeof options !== 'object' || options === null || Array.isArray(options))
      throw new TypeError(
        `Expected \`options\` to be an object such as { minutes: 15 }, or left out; got ${options === null ? 'null' : typeof options}`,
      )
    const minutes = options.minutes ?? 60
    if (!Number.isInteger(minutes) || minutes < 1 || minutes > 1440)
      throw new TypeError(
        `Expected \`minutes\` to be an integer from 1 to 1440, got ${String(minutes)}`,
      )
    const [data, info] = await Promise.all([this.metricsData(minutes), this.inspect()])
    return summarize(this.name, data, info)
  }

  /** The backend's counts behind `metrics()` (for worq/metrics). @internal */
  async metricsData(minutes: number): Promise<{ minutes: MinuteCounts[]; totals: MinuteCounts }> {
    return (await this.#backend()).metrics(this.name, minutes)
  }

  // ---- settings and pause ----

  /** The queue's settings, stored in the backend (defaults where nothing was configured). */
  async settings(): Promise<QueueSettings> {
    return (await this.#backend()).settings(this.name)
  }

  /**
   * Changes queue settings for every process of the queue: `events`, `eventsMax`, `metrics`,
   * `listing`, `cacheSize`, `cacheTtl`. Returns them all.
   */
  async configure(settings: Partial<Omit<QueueSettings, 'paused'>>): Promise<QueueSettings> {
    const patch = checkSettings(settings)
    return (await this.#backend()).configure(this.name, patch)
  }

  /** Pauses the queue: it accepts enqueues and starts nothing new; running tasks finish. */
  async pause(): Promise<void> {
    await (await this.#backend()).pause(this.name, true)
  }

  /** Resumes a paused queue: what waited runs, in priority order. */
  async resume(): Promise<void> {
    await (await this.#backend()).pause(this.name, false)
  }

  /** True while the queue is paused. */
  async isPaused(): Promise<boolean> {
    return (await this.settings()).paused
  }

  // ---- limits ----

  /**
   * Limits the tasks named `name` (a dotted name, a prefix ending in `.` for a namespace, taken
   * together, or `'*'` for the whole queue) across every worker: at most `concurrency` running at
   * once, at most `rate.max` starts in any window of `rate.per` ms. `null` removes the limit.
   */
  async limit(name: string, limit: Limit | null): Promise<void> {
    checkLimitName(name)
    const checked = limit === null ? null : checkLimit(limit)
    await (await this.#backend()).setLimit(this.name, name, checked)
  }

  /**
   * Every limit of the queue, by name, in a record without a prototype: each name an own entry
   * (`__proto__` and `constructor` included), and a name without a limit reads `undefined`.
   */
  async limits(): Promise<Record<string, Limit>> {
    return (await this.#backend()).listLimits(this.name)
  }

  // ---- schedules ----

  /**
   * Runs `call(...args)` periodically: `when` is `{ cron, tz? }` (five fields, or six with seconds)
   * or `{ every: ms }`, with optional `startAt`, `endAt`, `limit` and `catchUp`. `call` is a queue
   * function (`q.reports.build`) or `task(q.reports.build, options)`. The queue's worker pools fire
   * it, one task per due time, with id `<id>@<due time ISO>`. The same `id` replaces a schedule.
   * `args` are stored once and sent to every run: values only (a Deferred among them, at any depth,
   * is a TypeError naming where; pass `await d.result(ms)` instead).
   */
  async schedule(
    id: string,
    when: Schedule,
    call: unknown,
    ...args: unknown[]
  ): Promise<ScheduleInfo> {
    const stored = await storedSchedule(id, when, call, args)
    const { task } = stored
    const backend = await this.#backend()
    if (backend.limits.maxPayloadBytes < Buffer.byteLength(task.payload))
      throw new PayloadTooLarge(
        `the arguments of schedule ${id}`,
        Buffer.byteLength(task.payload),
        backend.limits.maxPayloadBytes,
      )
    await backend.putSchedule(this.name, stored)
    return scheduleInfo(stored)
  }

  /** Every schedule of the queue, in order of id (by code point), on every backend. */
  async schedules(): Promise<ScheduleInfo[]> {
    const stored = await (await this.#backend()).schedules(this.name)
    return stored.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)).map(scheduleInfo)
  }

  /** Removes a schedule; true when there was one. */
  async unschedule(id: string): Promise<boolean> {
    checkId(id)
    return (await this.#backend()).removeSchedule(this.name, id)
  }

  async #backend(): Promise<Backend> {
    return (await this.backend()).backend
  }
}
