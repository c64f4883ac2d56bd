/**
 * The backend contract: what `memory://` and `redis://` both implement, byte for byte the same
 * semantics (one contract suite, test/contract, proves it).
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
 *    its kept outcome replaced (a backend may drop the old outcome at the new enqueue).
 * 2. **reserve** (inside `exchange`) moves ready tasks to `processing`, gives each a fencing
 *    `token` and a lease `now + 2 × heartrate + grace`, and returns them with their argument slots.
 * 3. **renew** extends the leases of running tasks; a lease whose token no longer matches is
 *    reported lost and not extended.
 * 4. **finish** (inside `exchange`) stores the outcome for `resultTimeout` ms, or, with `retryAt`,
 *    puts the task back (delayed until `retryAt`) for another attempt, or, with `release`, returns
 *    a task that never started to the front of the line with its attempt uncounted. A finish whose token no
 *    longer matches is refused and reported (`stale`); a release is refused without a report (the
 *    task never started, so no run was lost). Finishing writes the outcome into each
 *    dependent's slot; a dependent whose last slot filled becomes `enqueued`; a failure cascades
 *    down `onError: 'fail'` dependents. Every outcome is delivered to the client that enqueued the
 *    task through the listener given to `listen`.
 * 5. **sweep** finds lapsed leases: a task with attempts left goes back (after its backoff), else it
 *    becomes `expired` and the expiry cascades like a failure. A sweep that comes more than
 *    {@link stallMs} after the queue's previous sweep (the store was paused or down, or no worker
 *    swept) acts on none of the leases that lapsed in between: it gives each one more lease from
 *    now, so that live workers renew first; the next sweep acts on those still lapsed.
 * 6. After `resultTimeout` the outcome vanishes; nothing is left behind for the task.
 *
 * Outcomes travel as strings (see lib/outcome.ts): the first character is the status (`c`
 * completed, `f` failed, `x` expired, `k` cancelled), the rest its payload. Backends copy them;
 * only the broker reads them.
 */
import type { Backoff } from '../types.js'

/** A reference to another task (a Deferred argument), possibly on another queue of the backend. */
export interface TaskRef {
  queue: string
  id: string
}

/** Backoff normalised for storage. */
export interface StoredBackoff {
  type: 'fixed' | 'exponential'
  delay: number
  jitter: number
  maxDelay: number
}

/** A task as the broker hands it to the backend. */
export interface NewTask {
  id: string
  /** Dotted task name, e.g. `math.add`. */
  name: string
  /** The serialized call (lib/serializer.ts); Deferred arguments are references into `deps`. */
  payload: string
  /** Distinct Deferred arguments, in the order the payload refers to them. */
  deps: TaskRef[]
  onError: 'fail' | 'pass'
  /** When true, no outcome is kept or delivered (the record vanishes when the task ends). */
  ignoreResult: boolean
  /** ms an outcome is kept. */
  resultTimeout: number
  /** ms between lease renewals. */
  heartrate: number
  /** Total runs allowed (≥ 1). */
  attempts: number
  backoff: StoredBackoff
  /** Epoch ms before which the task must not run; 0 = now. */
  runAt: number
  /** ms one run may take before it fails with `TaskTimeout`; 0 = no limit. */
  timeout: number
}

/** A task handed to a worker. */
export interface ReservedTask extends NewTask {
  /** Fencing token of this reservation; finish and renew must present it. */
  token: string
  /** 1 for the first run, 2 for the first retry, … */
  attempt: number
  /** Outcome strings of the Deferred arguments, aligned with `deps`. */
  slots: string[]
}

/** A worker's report that a reserved task ended. */
export interface Finish {
  id: string
  token: string
  /** The outcome string (`c…` or `f…`). */
  outcome: string
  /** Epoch ms: run the task again then instead of finishing it (attempts remain). */
  retryAt?: number
  /**
   * The task never started on this worker (it was prefetched, or reserved while stopping): put it
   * back first in line as it was, its attempt not counted. `outcome` and `retryAt` are ignored.
   */
  release?: boolean
}

/** A lease a worker holds. */
export interface Lease {
  id: string
  token: string
  heartrate: number
}

/** What `exchange` did. */
export interface ExchangeResult {
  /**
   * Ids of finishes refused because their token no longer matched (the lease was lost). Releases
   * are never listed: a task that never started lost no run.
   */
  stale: string[]
  /** Newly reserved tasks (at most `max`). */
  reserved: ReservedTask[]
  /** ms until the earliest delayed task is due, when fewer than `max` were ready; undefined if none. */
  nextDueIn?: number
}

/** A task's current state, as `status()` reports it. */
export interface TaskState {
  status: 'pending' | 'enqueued' | 'processing' | 'completed' | 'failed' | 'expired' | 'cancelled'
  /** The outcome string, for a finished task. */
  outcome?: string
}

/** A live worker, as `worq info` lists it. */
export interface WorkerInfo {
  id: string
  hostname: string
  pid: number
  concurrency: number
  /** Tasks it runs now. */
  running: number
  /** Epoch ms it started. */
  startedAt: number
  /** Epoch ms of its last registration (filled in by the backend on read). */
  seenAt: number
}

/** What `inspect` reports of a queue. */
export interface QueueInfo {
  /** Enqueued and ready. */
  waiting: number
  /** Enqueued but held back (delay, runAt, retry backoff). */
  delayed: number
  /** Waiting for Deferred arguments. */
  pending: number
  /** Reserved by a worker. */
  processing: number
  /** Age in ms of the oldest ready task, or null when none waits. */
  oldestWaitingMs: number | null
  /** Workers whose registration has not lapsed. */
  workers: WorkerInfo[]
}

/** Receives outcomes of tasks enqueued through this backend instance. */
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

/** The backend contract. Every method may be called concurrently. */
export interface Backend {
  /** The URL this backend was opened with (credentials redacted). */
  readonly url: string
  /** Limits the broker enforces before handing data over. */
  readonly limits: BackendLimits
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
   * Resolves when work may be ready on `queue` (an enqueue, a promotion, a retry) or after
   * `timeoutMs`, whichever is first, with the tasks handed over to parked `workerId` (reserved for
   * it, as exchange reserves) or none. Spurious wake-ups are allowed; missed ones are not. Rejects
   * nothing: on `signal` abort it resolves. A worker that waited must unregister when it stops
   * (handovers nobody took are released then).
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
   * Expires or retries tasks whose lease lapsed. Guarded: across all callers it runs at most once
   * per `intervalMs`. Returns how many tasks it handled (0 when the guard held).
   */
  sweep(queue: string, intervalMs: number): Promise<number>
  /** The task's state, or null when nothing is known of it (never existed, or its outcome expired). */
  status(queue: string, id: string): Promise<TaskState | null>
  /** Cancels a pending or enqueued (or delayed) task. True when it was cancelled. */
  cancel(queue: string, id: string): Promise<boolean>
  /** Tasks waiting to run: enqueued, delayed and pending. */
  size(queue: string): Promise<number>
  /** Cancels every waiting task of the queue. Returns how many. */
  purge(queue: string): Promise<number>
  /**
   * Subscribes to outcomes of tasks this instance enqueued (with results kept). Resolves once
   * delivery is guaranteed for every later enqueue. The listener may also be called for outcomes
   * that were already fetched. `onGap` is called when delivery was interrupted (a reconnect): the
   * caller must re-check what it waits for.
   */
  listen(listener: OutcomeListener, onGap: () => void): Promise<void>
  /** Records (or refreshes) a live worker for `ttlMs`; one that stops refreshing disappears. */
  registerWorker(queue: string, info: WorkerInfo, ttlMs: number): Promise<void>
  /** Removes a worker's registration. */
  unregisterWorker(queue: string, id: string): Promise<void>
  /** Counts and live workers of a queue. */
  inspect(queue: string): Promise<QueueInfo>
  /**
   * Conditions under which the backend cannot keep its guarantees (e.g. a Redis that evicts keys),
   * each a sentence saying what to change. Checked when a pool starts.
   */
  checks(): Promise<string[]>
  /** Releases connections and timers. Idempotent. */
  close(): Promise<void>
}

/** Normalises a backoff option for storage. */
export function storedBackoff(backoff: Backoff | undefined): StoredBackoff {
  if (backoff === undefined) return { type: 'fixed', delay: 0, jitter: 0, maxDelay: 0 }
  if (typeof backoff === 'number') return { type: 'fixed', delay: backoff, jitter: 0, maxDelay: 0 }
  return {
    type: backoff.type,
    delay: backoff.delay,
    jitter: backoff.jitter ?? 0,
    maxDelay: backoff.maxDelay ?? 0,
  }
}

/** The delay before attempt `attempt + 1`, given the attempt that just failed. `random` in [0, 1). */
export function backoffDelay(b: StoredBackoff, attempt: number, random: number): number {
  let ms = b.type === 'exponential' ? b.delay * 2 ** (attempt - 1) : b.delay
  if (b.maxDelay > 0) ms = Math.min(ms, b.maxDelay)
  return Math.round(ms * (1 - b.jitter * random))
}

/** The lease grace added to 2 × heartrate, in ms. */
export const LEASE_GRACE_MS = 1000

/**
 * How long sweeping may stop before the next sweep takes lapsed leases for a stall rather than for
 * dead workers: two of its intervals and a second.
 */
export function stallMs(intervalMs: number): number {
  return 2 * intervalMs + 1000
}

/** A lease's length for a heartrate. */
export function leaseMs(heartrate: number): number {
  return 2 * heartrate + LEASE_GRACE_MS
}
