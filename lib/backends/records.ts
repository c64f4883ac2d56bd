/**
 * The task data that crosses the backend contract (lib/backends/backend.ts): tasks as the broker
 * hands them over, tasks as a worker gets them, what a worker reports back, and what a backend
 * reports of tasks. Values the broker alone reads (arguments, outcomes, progress, metadata) travel
 * as strings that backends store and copy without reading. What a backend keeps and reports of a
 * queue (workers, settings, limits, schedules, events, metrics) is in queue-records.ts.
 */
import type { TaskStatus } from '../types.js'

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
  /** Lower runs first; an integer from −1 000 000 to 1 000 000. 0 is the default (and the fast path). */
  priority: number
  /** A JSON object, as text (at most 4 KiB), or '' for none. Stored and reported, never read. */
  metadata: string
  /**
   * The result cache (docs/cache.md), or undefined: a completed outcome of the same call within
   * `ttl` ms (0: the queue's `cacheTtl`) is reused instead of running the function. `key` is the
   * call's key when the broker could compute it (all arguments are values); '' asks the backend to
   * compute it when the task becomes ready (`readyCacheKey` in rules.ts), from `template` (the
   * arguments as plain JSON with a placeholder for each pending Deferred argument, '' when they
   * are not plain JSON) and the argument outcomes.
   */
  cache: { key: string; ttl: number; template: string } | undefined
  /** W3C trace context of the producer's span (`traceparent`, a newline, `tracestate`), or ''. */
  trace: string
  /**
   * True when the caller chose the id (task option `id`), which another task may hold; a
   * generated id is new. (On PostgreSQL a batch of generated ids is written without a check for
   * ids taken: docs/postgres.md, "A batch of new ids".)
   */
  idChosen?: boolean
}

/** A task handed to a worker. */
export interface ReservedTask extends NewTask {
  /** Fencing token of this reservation; finish and renew must present it. */
  token: string
  /** 1 for the first run, 2 for the first retry, … */
  attempt: number
  /** Outcome strings of the Deferred arguments, aligned with `deps`. */
  slots: string[]
  /** Epoch ms it became due to run (its enqueue, its runAt or its retry time, whichever is later). */
  dueAt: number
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
  /**
   * How long the run took, and how long the task waited from due to its start (ms), as the worker
   * measured them. A backend may count its wait- and run-time metrics from these (Redis does).
   */
  runMs?: number
  waitMs?: number
  /**
   * The task's name and attempt, as the worker knows them: a backend names the task with them when
   * it turns an outcome over `maxPayloadBytes` into a failure (else 'unknown').
   */
  name?: string
  attempt?: number
}

/** A lease a worker holds. */
export interface Lease {
  id: string
  token: string
  heartrate: number
}

/** The latest progress of a running task, as its worker reports it. */
export interface ProgressUpdate {
  id: string
  token: string
  /** The value, serialized (lib/serializer.ts `encodeValue`). */
  value: string
}

/** What `exchange` did. */
export interface ExchangeResult {
  /**
   * Ids of finishes refused because their token no longer matched (the lease was lost). Releases
   * are never listed, nor finishes of tasks cancelled while they ran: no run was lost.
   */
  stale: string[]
  /** Newly reserved tasks (at most `max`). */
  reserved: ReservedTask[]
  /** ms until the earliest delayed task is due, when fewer than `max` were ready; undefined if none. */
  nextDueIn?: number
  /**
   * Set when the exchange ran but was not confirmed as the backend was asked to (Redis `replicas`:
   * fewer replicas acknowledged it in time). Its reservations hold and are to be run; `finishes`
   * (those it applied) are to be sent again with a later exchange, until one is confirmed.
   */
  unconfirmed?: { error: Error; finishes: Finish[] }
}

/** A task's current state, as `status()` reports it. */
export interface TaskState {
  status: TaskStatus
  /** The outcome string, for a finished task. */
  outcome?: string
  /** True when the outcome came from the result cache. */
  cached?: boolean
}

/** The options of a call, as a task keeps them for a retry by hand (`POST /api/tasks/:id/retry`). */
export interface StoredCall {
  payload: string
  deps: TaskRef[]
  onError: 'fail' | 'pass'
  ignoreResult: boolean
  resultTimeout: number
  heartrate: number
  attempts: number
  backoff: StoredBackoff
  timeout: number
  cacheTtl: number
}

/** The call a task keeps for a retry by hand: its payload and options. */
export function storedCall(t: NewTask): StoredCall {
  return {
    payload: t.payload,
    deps: t.deps,
    onError: t.onError,
    ignoreResult: t.ignoreResult,
    resultTimeout: t.resultTimeout,
    heartrate: t.heartrate,
    attempts: t.attempts,
    backoff: t.backoff,
    timeout: t.timeout,
    cacheTtl: t.cache?.ttl ?? 0,
  }
}

/** What a backend knows of one task: `TaskInfo` before the broker decodes its values. */
export interface StoredInfo {
  id: string
  name: string
  status: TaskStatus
  priority: number
  /** The latest progress, serialized, or undefined. */
  progress?: string
  /** JSON text, or undefined. */
  metadata?: string
  /** Runs started so far (0 before the first). */
  attempt: number
  attempts: number
  createdAt: number
  /** When a delayed task may run (epoch ms), if it was held back. */
  runAt?: number
  startedAt?: number
  finishedAt?: number
  workerId?: string
  /** The outcome string of a finished task. */
  outcome?: string
  /** True when the outcome came from the result cache (or a call it was attached to). */
  cached?: boolean
  /** The call, while the task lives and after it failed, expired or was cancelled (not after it completed). */
  call?: StoredCall
}

/** A `list` query: every given condition must hold. */
export interface ListQuery {
  /** Any of these statuses (all when undefined). */
  statuses?: readonly TaskStatus[]
  /** Exact dotted name, or a namespace prefix ending in `.`. */
  name?: string
  /** Created strictly before this epoch ms. */
  createdBefore?: number
  /** Created strictly after this epoch ms. */
  createdAfter?: number
  /** At most this many (1–1000). */
  limit: number
  /** Skip this many matches first. */
  offset: number
}
