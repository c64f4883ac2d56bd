/**
 * The backend contract: what `memory://` and `redis://` both implement, with the same semantics
 * (one contract suite, test/contract, proves it). docs/backends.md says the same for implementers.
 *
 * ## Task lifecycle
 *
 * 1. **enqueue** stores the task record and its outcome slot atomically. A task without Deferred
 *    arguments becomes `enqueued` (or waits in the delayed set until `runAt`, still reported
 *    `enqueued`). A task with Deferred arguments (`deps`) becomes `pending`: for each argument whose
 *    outcome already exists the outcome is copied into the task's slot at once; for the others the
 *    task registers itself as a dependent of the argument's task. A failed, expired or cancelled
 *    argument with `onError: 'fail'` fails the dependent at once with that argument's outcome. An id
 *    that is pending, enqueued or processing is refused (`duplicate`); a finished id is reused and
 *    its kept outcome replaced.
 * 2. **ready**: a task whose arguments are all there joins the line of its `priority` (lower first,
 *    first in first out within one). A task with `cache` first looks up its key: a kept result
 *    completes it at once (`cached`); a live task with the same key (single flight) takes it as a
 *    follower that ends with the leader's value, or runs on its own if the leader fails.
 * 3. **reserve** (inside `exchange`) moves ready tasks to `processing` unless the queue is paused,
 *    gives each a fencing `token` and a lease `now + 2 × heartrate + grace`, and returns them with
 *    their argument slots. A task bound by a limit that is full waits aside (a concurrency limit:
 *    until a slot frees; a rate limit: until the window has room) without holding up the others.
 * 4. **renew** extends the leases of running tasks; a lease whose token no longer matches is
 *    reported lost and not extended. **progress** stores a running task's latest progress and
 *    delivers it like an outcome (prefix `p`).
 * 5. **finish** (inside `exchange`) stores the outcome for `resultTimeout` ms, or, with `retryAt`,
 *    puts the task back (delayed until `retryAt`, in its priority) for another attempt, or, with
 *    `release`, returns a task that never started to the front of its priority with its attempt
 *    uncounted. A finish whose token no longer matches is refused and reported (`stale`), except a
 *    release and the finish of a task cancelled while it ran. Finishing frees the task's limit
 *    slots, writes the outcome into each dependent's slot; a dependent whose last slot filled
 *    becomes ready; a failure cascades down `onError: 'fail'` dependents. Every outcome is delivered
 *    to the client that enqueued the task through the listener given to `listen`.
 * 6. **cancel** ends a pending, enqueued or processing task with a cancelled outcome (cascading as a
 *    failure); a running one's worker is told through `control` at once, and its finish is refused
 *    without a report.
 * 7. **sweep** finds lapsed leases: a task with attempts left goes back (after its backoff), else it
 *    becomes `expired` and the expiry cascades like a failure. A sweep that comes more than
 *    {@link stallMs} after the queue's previous sweep (the store was paused or down, or no worker
 *    swept) acts on none of the leases that lapsed in between: it gives each one more lease from
 *    now, so that live workers renew first; the next sweep acts on those still lapsed. The sweep
 *    also drops index entries of outcomes that expired.
 * 8. After `resultTimeout` the outcome vanishes; nothing is left behind for the task.
 *
 * Outcomes travel as strings (see lib/outcome.ts): the first character is the status (`c`
 * completed, `f` failed, `x` expired, `k` cancelled), the rest its payload. Backends copy them;
 * only the broker reads them.
 */
import type {
  ExchangeResult,
  Finish,
  Lease,
  ListQuery,
  NewTask,
  ProgressUpdate,
  ReservedTask,
  StoredInfo,
  TaskState,
} from './records.js'
import type {
  EventBatch,
  Limit,
  MinuteCounts,
  QueueInfo,
  QueueSettings,
  StoredSchedule,
  WorkerInfo,
} from './queue-records.js'

export type * from './records.js'
export type * from './queue-records.js'
export {
  storedBackoff,
  backoffDelay,
  LEASE_GRACE_MS,
  stallMs,
  leaseMs,
  PRIORITY_RANGE,
  MAX_DURATION_MS,
  MAX_TIMER_MS,
  limitBinds,
  bindingLimits,
  limitRecord,
  rateWindowMs,
  TIME_BUCKETS_MS,
  timeBucket,
  DEFAULT_SETTINGS,
  METRICS_MINUTES,
  cacheKey,
  cachePlaceholder,
  plainOutcomeJson,
  readyCacheKey,
} from './rules.js'

/**
 * Receives what a backend delivers to the instance that enqueued a task: its outcome (`c`, `f`,
 * `x`, `k` strings) and its progress (`p` followed by the serialized value).
 */
export type OutcomeListener = (queue: string, id: string, outcome: string) => void

/** Options every backend accepts. */
export interface BackendLimits {
  /** Largest serialized call or outcome, in bytes. @default 16 MiB */
  maxPayloadBytes: number
}

/** How an exchange may park its worker (see Backend.exchange). */
export interface Park {
  /** Longest park, ms. */
  ms: number
  /** Most tasks to hand over. */
  slots: number
}

/** What a queue's workers are told as it happens (`Backend.control`). */
export type ControlMessage =
  /** The task was cancelled: abort its run. */
  | { type: 'cancel'; id: string }
  /** The queue was paused, or resumed. */
  | { type: 'paused' }
  | { type: 'resumed' }
  /** The queue's schedules changed: read them again. */
  | { type: 'schedules' }
  /**
   * Messages may have been missed (the backend's connection was lost and is back): read again what
   * they would have said (the pause, the schedules). A cancel missed shows as a lost lease.
   */
  | { type: 'resync' }

/** How `readEvents` waits. */
export interface ReadOptions {
  /** Most events to return. */
  count: number
  /** Wait up to this many ms for an event when none is there (0: return at once). */
  blockMs: number
  signal?: AbortSignal
}

/** The backend contract. Every method may be called concurrently. */
export interface Backend {
  /** The URL this backend was opened with (credentials redacted). */
  readonly url: string
  /** Limits the broker enforces before handing data over. */
  readonly limits: BackendLimits
  /**
   * Lanes a worker pool of concurrency 32 or more runs on this backend unless its `lanes` option
   * says otherwise: more than one only where a queue's exchanges run beside this process's work
   * (Redis), not where they take the queue's lock one at a time (PostgreSQL) or do no I/O
   * (memory). @default 1
   */
  readonly lanes?: number
  /**
   * Calls of one tick's batch that go at once, before the tick ends (its first part), so that the
   * backend works on them while this process makes the rest (Redis: 25). Absent: none, the whole
   * tick goes when it ends, as where a part sent early would not reach the server before the
   * tick's code is done anyway (PostgreSQL: a statement goes out after the pool's and the
   * backend's awaits, which run once the calls of the tick are made) or runs in this process's
   * thread (memory). @default none
   */
  readonly enqueueFirst?: number
  /**
   * Calls per part of one tick's batch after its first part (`enqueueFirst`): a tick that keeps
   * calling (a bulk of calls) sends a part every this many calls, so the backend writes one part
   * while this process makes the next. Absent: the rest of the tick goes as one part (PostgreSQL,
   * where parts sent side by side gained nothing). @default none
   */
  readonly enqueuePart?: number

  // ---- tasks ----

  /**
   * Stores tasks atomically each (a batch is not one transaction). For each task, in order:
   * `ok`, or `duplicate` when its id is pending, enqueued or processing.
   */
  enqueue(queue: string, tasks: readonly NewTask[]): Promise<Array<'ok' | 'duplicate'>>
  /**
   * Finishes `done`, then reserves up to `max` ready tasks for `workerId` (finish-and-fetch: one
   * round trip per batch). With `park` and fewer than `max` ready, a backend may park the worker:
   * for up to `park.ms` (or until the worker's next exchange) work that arrives is reserved for it,
   * up to `park.slots` (at most the `max` slots left), and handed over by its waitForWork.
   */
  exchange(
    queue: string,
    workerId: string,
    done: readonly Finish[],
    max: number,
    park?: Park,
  ): Promise<ExchangeResult>
  /**
   * Resolves when work may be ready on `queue` (an enqueue, a promotion, a retry, a freed limit
   * slot, a resume) or after `timeoutMs`, whichever is first, with the tasks handed over to parked
   * `workerId` (reserved for it, as exchange reserves) or none. Spurious wake-ups are allowed;
   * missed ones are not. Rejects nothing: on `signal` abort it resolves, and once the backend
   * closes it resolves with none at once (a wait under way then too): the worker's next exchange
   * rejects `BrokerClosed`. A worker that waited must unregister when it stops (handovers nobody
   * took are released then).
   */
  waitForWork(
    queue: string,
    workerId: string,
    timeoutMs: number,
    signal?: AbortSignal,
  ): Promise<ReservedTask[]>
  /** Extends leases. Returns the ids whose lease was lost (token mismatch or gone). */
  renew(queue: string, leases: readonly Lease[]): Promise<string[]>
  /**
   * Stores the latest progress of running tasks and delivers it to the listeners of the instance
   * that enqueued each (prefix `p`), and as `progress` events. An update whose token no longer
   * matches (a lost lease, a cancel) is dropped.
   */
  progress(queue: string, updates: readonly ProgressUpdate[]): Promise<void>
  /**
   * Expires or retries tasks whose lease lapsed, and drops index entries of expired outcomes.
   * Guarded: across all callers it runs at most once per `intervalMs`. Returns how many tasks it
   * handled (0 when the guard held).
   */
  sweep(queue: string, intervalMs: number): Promise<number>
  /** The task's state, or null when nothing is known of it (never existed, or its outcome expired). */
  status(queue: string, id: string): Promise<TaskState | null>
  /** What is known of one task, or null. */
  info(queue: string, id: string): Promise<StoredInfo | null>
  /**
   * Tasks matching `query`, newest first by creation time: every task enqueued while the queue's
   * `listing` setting was on, finished ones while their outcome is kept. Throws `ListingOff` when
   * the setting is off.
   */
  list(queue: string, query: ListQuery): Promise<StoredInfo[]>
  /**
   * Cancels a pending, enqueued (or delayed) or processing task: it ends `cancelled` at once and
   * the cancel cascades to its dependents; a processing task's worker is told through `control`.
   * True when this call cancelled it; false when it had ended or is unknown.
   */
  cancel(queue: string, id: string): Promise<boolean>
  /** Tasks waiting to run: enqueued, delayed and pending. */
  size(queue: string): Promise<number>
  /** Cancels every waiting (not processing) task of the queue. Returns how many. */
  purge(queue: string): Promise<number>
  /**
   * Subscribes to outcomes and progress of tasks this instance enqueued (with results kept).
   * Resolves once delivery is guaranteed for every later enqueue. The listener may also be called
   * for outcomes that were already fetched. `onGap` is called when delivery was interrupted (a
   * reconnect): the caller must re-check what it waits for.
   */
  listen(listener: OutcomeListener, onGap: () => void): Promise<void>
  /**
   * Subscribes to the control messages of `queue` (cancels of running tasks, pause and resume,
   * changed schedules). Resolves, once subscribed, with a function that unsubscribes.
   */
  control(queue: string, listener: (message: ControlMessage) => void): Promise<() => void>

  // ---- workers ----

  /** Records (or refreshes) a live worker for `ttlMs`; one that stops refreshing disappears. */
  registerWorker(queue: string, info: WorkerInfo, ttlMs: number): Promise<void>
  /** Removes a worker's registration. */
  unregisterWorker(queue: string, id: string): Promise<void>
  /** Counts and live workers of a queue. */
  inspect(queue: string): Promise<QueueInfo>

  // ---- queue settings ----

  /** The queue's settings (defaults where nothing was configured). */
  settings(queue: string): Promise<QueueSettings>
  /** Changes settings (not `paused`: see `pause`); returns them all. */
  configure(queue: string, patch: Partial<Omit<QueueSettings, 'paused'>>): Promise<QueueSettings>
  /**
   * Pauses (true) or resumes (false) the queue: a paused queue accepts enqueues and starts nothing
   * new. Emits `paused`/`resumed` (event and control message) when the state changed; a resume
   * wakes the workers. True when the state changed.
   */
  pause(queue: string, paused: boolean): Promise<boolean>

  // ---- result cache ----

  /** Drops the cached result under `key`; true when there was one. */
  cacheDelete(queue: string, key: string): Promise<boolean>
  /** Drops every cached result of the queue; returns how many. */
  cacheClear(queue: string): Promise<number>
  /** How many results the cache holds (expired ones not counted). */
  cacheSize(queue: string): Promise<number>

  // ---- limits ----

  /** Sets (or with null removes) the limit named `name`; true when it changed something. */
  setLimit(queue: string, name: string, limit: Limit | null): Promise<boolean>
  /** Every limit of the queue, by name: a null-prototype record (`limitRecord`). */
  listLimits(queue: string): Promise<Record<string, Limit>>

  // ---- schedules ----

  /** Stores a schedule (replacing one with the same id) and tells the workers (`control`). */
  putSchedule(queue: string, schedule: StoredSchedule): Promise<void>
  /** Removes a schedule; true when there was one. */
  removeSchedule(queue: string, id: string): Promise<boolean>
  /** Every schedule of the queue. */
  schedules(queue: string): Promise<StoredSchedule[]>
  /**
   * Fires schedule `id` for its due time `due`, atomically and at most once per due time: when the
   * schedule still has `next === due` and is still the definition the caller read (its `gen`, or
   * none on both sides for a schedule stored without one), enqueues `task` (its id
   * `<id>@<due ISO>`), sets `next` to `next` (null: the schedule ended), `last` to `due` and
   * counts the run. With `task` null the due time is skipped instead (nothing enqueued, no run
   * counted). False when another caller fired it first, or the schedule was replaced (even with
   * the same next due time: `task` and `next` were computed from the old definition) or removed;
   * the caller then reads the schedules again.
   */
  fireSchedule(
    queue: string,
    id: string,
    gen: string | undefined,
    due: number,
    next: number | null,
    task: NewTask | null,
  ): Promise<boolean>

  // ---- events and metrics ----

  /**
   * Events after position `after` (an eventId or a batch's `last`; `'now'` for only new ones). When
   * none is there, waits up to `blockMs`. `gap` says events after `after` were dropped.
   */
  readEvents(queue: string, after: string, options: ReadOptions): Promise<EventBatch>
  /**
   * Per-minute counts of the last `minutes` minutes, oldest first (minutes without any left out),
   * and the queue's totals since its metrics began (monotonic: a minute is folded into the totals
   * before it expires; `totals.minute` is 0).
   */
  metrics(
    queue: string,
    minutes: number,
  ): Promise<{ minutes: MinuteCounts[]; totals: MinuteCounts }>

  /**
   * Conditions under which the backend cannot keep its guarantees (e.g. a Redis that evicts keys),
   * each a sentence saying what to change. Checked when a pool starts.
   */
  checks(): Promise<string[]>
  /** Releases connections and timers. Idempotent. */
  close(): Promise<void>
}

/** A backend that can enqueue inside the caller's own database transaction (postgres://). */
export interface TransactionalBackend extends Backend {
  /**
   * Stores tasks in the caller's open transaction on `tx`: they exist if and only if it commits,
   * and no worker sees them before. Answers as `enqueue` does.
   */
  enqueueIn(
    tx: { query(text: string, values?: any[]): Promise<{ rows: any[] }> },
    queue: string,
    tasks: readonly NewTask[],
  ): Promise<Array<'ok' | 'duplicate'>>
}
