/**
 * Broker: one queue name on one backend URL. It exposes functions to the workers of this process,
 * turns calls into tasks (resolving promise arguments, serializing, batching the calls of one tick
 * into one backend round trip), hands back Deferreds, and manages the queue: its tasks (info,
 * listing, cancel), its settings, pause, limits, schedules and result cache.
 */
import { openBackend, checkUrl, type BackendHandle, type BackendOptions } from './backends/index.js'
import type { Backend, Limit, QueueInfo, QueueSettings } from './backends/backend.js'
import type { Deferred } from './deferred.js'
import { BrokerClosed, NotRetryable, PayloadTooLarge } from './errors.js'
import { checkId, checkOptions, newTaskId } from './options.js'
import { makeQueue, type Queue, type QueueHost } from './queue.js'
import { TaskSpace, checkName } from './taskspace.js'
import type { TaskFunction, TaskOptions, TransactionClient } from './types.js'
import type { ResultHub } from './results.js'
import { Enqueuer } from './enqueue.js'
import { listQuery, toTaskInfo, type TaskFilter, type TaskInfo } from './task-info.js'
import { BrokerCache } from './admin/cache.js'
import { retryTask, taskTypes } from './admin/retry.js'
import { storedSchedule } from './admin/schedule-call.js'
import { checkLimit, checkLimitName } from './admin/limits.js'
import { scheduleInfo, type Schedule, type ScheduleInfo } from './admin/schedules.js'
import { checkSettings } from './admin/settings.js'
import { EventStream, type EventsOptions } from './events/stream.js'
import { summarize, type QueueMetrics } from './metrics/summary.js'
import type { MinuteCounts } from './backends/backend.js'

/** Options of `expose`. */
export interface ExposeOptions {
  /** Replace functions already exposed under the same names instead of throwing. @default false */
  replace?: boolean
}

/** A task name the live workers of a queue expose. */
export interface TaskType {
  /** The dotted task name. */
  name: string
  /** How many live workers expose it. */
  workers: number
}

/** A queue name on a backend: expose functions, make queues, manage the queue, close. */
export class Broker implements QueueHost {
  /** The backend URL. */
  readonly url: string
  /** The queue name. */
  readonly name: string
  /** The queue's result cache: `invalidate`, `clear`, `size`, `configure`. */
  readonly cache: BrokerCache
  readonly #handle: Promise<BackendHandle>
  /** The backend once open (the hot path of enqueue skips awaiting #handle). */
  #opened: BackendHandle | undefined
  readonly #tasks = new Map<string, TaskFunction>()
  readonly #enqueuer: Enqueuer
  #closed = false
  /** Aborts at `close()`, its reason a `BrokerClosed`: this broker's event streams end with it. */
  readonly #closing = new AbortController()

  /** Use {@link getBroker}. */
  constructor(url: string, name = 'default', options: BackendOptions = {}) {
    checkUrl(url, options)
    checkName(name, 'name')
    this.url = url
    this.name = name
    this.#handle = openBackend(url, options)
    this.#handle.then(
      handle => (this.#opened = handle),
      () => undefined,
    )
    this.#enqueuer = new Enqueuer(name, {
      open: () => this.#open(),
      opened: () => this.#opened,
      ready: () => this.#ready(),
    })
    this.cache = new BrokerCache(this.name, () => this.#ready().then(h => h.backend))
  }

  /**
   * Makes functions callable by this broker's workers: a TaskSpace (all its functions, under its
   * namespace) or one named function. Exposing a name twice throws unless `replace` is set.
   */
  expose(spaceOrFn: TaskSpace<string, any> | TaskFunction, options: ExposeOptions = {}): this {
    this.#open()
    const entries =
      spaceOrFn instanceof TaskSpace
        ? [...spaceOrFn.tasks]
        : [...new TaskSpace('').task(spaceOrFn as TaskFunction).tasks]
    if (!options.replace) {
      for (const [name] of entries) {
        if (this.#tasks.has(name))
          throw new TypeError(
            `task "${name}" is already exposed on this broker; pass { replace: true } to replace it`,
          )
      }
    }
    for (const [name, fn] of entries) this.#tasks.set(name, fn)
    return this
  }

  /** The function exposed under `name`, if any. Only own entries of the registry count. @internal */
  lookup(name: string): TaskFunction | undefined {
    return this.#tasks.get(name)
  }

  /** The names exposed on this broker. @internal */
  exposed(): string[] {
    return [...this.#tasks.keys()]
  }

  /**
   * The Proxy Queue: `q.math.add(1, 2)` enqueues `math.add`. `target` prefixes every path;
   * `options` are defaults for every call made through it.
   */
  queue<S = never, Target extends string = ''>(
    target: Target = '' as Target,
    options?: TaskOptions,
  ): Queue<S, Target> {
    checkName(target, 'target', true)
    return makeQueue(this, target, checkOptions(options)) as Queue<S, Target>
  }

  /**
   * A Proxy Queue whose calls all enqueue inside the caller's transaction on `client` (a
   * node-postgres client after `BEGIN`), as the `tx` option does for one call: the tasks exist if
   * and only if the transaction commits. postgres:// only; elsewhere calls fail with
   * `TransactionsUnsupported`.
   */
  transaction<S = never, Target extends string = ''>(
    client: TransactionClient,
    target: Target = '' as Target,
    options?: TaskOptions,
  ): Queue<S, Target> {
    return this.queue<S, Target>(target, { ...options, tx: client })
  }

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

  /**
   * Enqueues again, with a new id, a task that failed, expired or was cancelled: the same name,
   * arguments and options (priority and metadata included). Returns the new task's id, or
   * undefined when the backend knows nothing of `id`. Throws `NotRetryable` for a task that has
   * not ended that way, or whose call was not kept.
   */
  async retry(id: string): Promise<string | undefined> {
    checkId(id)
    const backend = await this.#backend()
    const info = await backend.info(this.name, id)
    if (!info) return undefined
    if (!['failed', 'expired', 'cancelled'].includes(info.status) || !info.call)
      throw new NotRetryable(info.name, this.name, id, info.status)
    const newId = newTaskId()
    await this.#enqueuer.resubmit(retryTask(info, info.call, newId))
    return newId
  }

  // ---- events and metrics ----

  /**
   * The queue's events, from every process: `for await (const e of broker.events())`, or
   * `.on(type, listener)`; `close()` stops it. `since` is `'now'` (the default) or an `eventId` to
   * resume after. See docs/events.md.
   */
  events(options: EventsOptions = {}): EventStream {
    this.#open() // a closed broker: BrokerClosed here, not a stream that fails later
    return new EventStream(this.#backend(), this.name, options, this.#closing.signal)
  }

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

  /**
   * Releases this broker's hold on the backend. Idempotent. From the call on, every operation of
   * the broker, of its Deferreds (those that hold no outcome yet) and of its event streams rejects
   * with `BrokerClosed`, and so do the waits on its Deferreds under way.
   */
  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    const reason = new BrokerClosed()
    this.#closing.abort(reason)
    this.#enqueuer.close(reason)
    const handle = await this.#handle.catch(() => undefined)
    await this.#enqueuer.drain()
    await handle?.release()
  }

  /** True once `close()` was called. */
  get closed(): boolean {
    return this.#closed
  }

  /** The backend and its result hub, once open. @internal */
  async backend(): Promise<{ backend: Backend; hub: ResultHub }> {
    return this.#ready()
  }

  async #backend(): Promise<Backend> {
    return (await this.#ready()).backend
  }

  async #ready(): Promise<BackendHandle> {
    this.#open()
    return this.#handle
  }

  #open(): void {
    if (this.#closed) throw new BrokerClosed()
  }

  /** @internal Enqueues one call (enqueue.ts). */
  enqueue(...call: Parameters<QueueHost['enqueue']>): Promise<Deferred<unknown> | undefined> {
    return this.#enqueuer.enqueue(...call)
  }
}

/**
 * A new Broker for queue `name` on the backend at `url` (`memory://`, `redis://…`, `rediss://…`).
 * Brokers with the same URL in one process share one backend.
 */
export function getBroker(url: string, name = 'default', options?: BackendOptions): Broker {
  return new Broker(url, name, options)
}

/** Shorthand for `getBroker(url, name).queue(target, options)`. */
export function getQueue<S = never, Target extends string = ''>(
  url: string,
  name = 'default',
  target: Target = '' as Target,
  options?: TaskOptions,
): Queue<S, Target> {
  return getBroker(url, name).queue<S, Target>(target, options)
}
