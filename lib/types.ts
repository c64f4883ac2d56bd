/**
 * Shared types of worq.
 *
 * Glossary (docs/glossary.md says the same at more length):
 * - **task**: one call of an exposed function, identified by an id, with its arguments and options.
 * - **task space**: a named group of functions (`new TaskSpace('math', { add })`); dotted names
 *   (`'a.b'`) make nested namespaces (`q.a.b.add`).
 * - **queue**: a named line of tasks in one backend; workers of a queue run only its tasks.
 * - **broker**: a queue name on a backend URL; it exposes functions and enqueues calls.
 * - **deferred**: the client's handle on a task's result; passed as an argument to another call it
 *   makes that call wait for the value.
 * - **worker / pool**: the code that reserves tasks and runs them; a `WorkerPool` runs up to
 *   `concurrency` tasks at once in this process.
 * - **lease**: a reserved task's deadline (now + 2 × heartrate + grace) and fencing token; the
 *   worker renews it every heartrate; a finish with a stale token is refused.
 * - **sweep**: the periodic check, run by every worker and guarded so one runs per interval, that
 *   expires or retries tasks whose lease lapsed.
 * - **outcome**: what a finished task leaves behind for `resultTimeout`: a value, a failure, an
 *   expiry or a cancellation.
 */

/** Where a task is in its life. */
export type TaskStatus =
  'pending' | 'enqueued' | 'processing' | 'completed' | 'failed' | 'expired' | 'cancelled'

/** The statuses a task never leaves. */
export type FinalStatus = 'completed' | 'failed' | 'expired' | 'cancelled'

/** How long to wait between attempts of a failed task. */
export type Backoff =
  | number
  | {
      /** `fixed` waits `delay` every time; `exponential` waits `delay × 2^(attempt − 1)`. */
      type: 'fixed' | 'exponential'
      /** Base delay in ms. */
      delay: number
      /** Fraction (0–1) of the delay that is randomised away, to spread retries. @default 0 */
      jitter?: number
      /** Upper bound of one delay, in ms. @default no bound */
      maxDelay?: number
    }

/** Options of one call, given per call with `task(q.fn, options)` or as defaults to `queue()`. */
export interface TaskOptions<Args extends unknown[] = unknown[]> {
  /**
   * The task id, or a function of the call's (resolved) arguments that returns it. While a task
   * with that id is pending, enqueued or processing, another call with it fails with
   * `DuplicateTask`; once it finished, the id may be used again and the new run replaces the kept
   * result. @default a random 21-character id of URL-safe characters that never starts with `-`
   */
  id?: string | ((...args: Args) => string)
  /** Fire and forget: the call resolves to `undefined` and no result is kept. @default false */
  ignoreResult?: boolean
  /** How long a finished task's outcome is kept, in ms. @default 3_600_000 (one hour) */
  resultTimeout?: number
  /** How often a running task's lease is renewed, in ms. The lease lasts 2 × heartrate + 1 s. @default 10_000 */
  heartrate?: number
  /**
   * What a failed, expired or cancelled Deferred argument does to this task: `fail` fails it with
   * the argument's failure without running it; `pass` hands the `TaskFailure` in as the value.
   * @default 'fail'
   */
  onError?: 'fail' | 'pass'
  /** How many times the task may run in all: a throw or a lapsed lease retries while attempts remain. @default 1 */
  attempts?: number
  /** Wait between attempts, in ms or as a strategy. @default 0 */
  backoff?: Backoff
  /**
   * Hold the task back this many ms before it may run. Like every duration of these options, at
   * most 3 153 600 000 000 (100 years). Not with `runAt` in the same options (a `TypeError`); a
   * call's `delay` replaces its queue's default `runAt`. @default 0
   */
  delay?: number
  /**
   * Hold the task back until this time. Not with `delay` in the same options (a `TypeError`); a
   * call's `runAt` replaces its queue's default `delay`.
   */
  runAt?: Date
  /**
   * ms one run may take. Past it the task's `signal` aborts and the run fails with `TaskTimeout`
   * (retried while attempts remain); in a child process a task that ignores the signal is killed.
   * @default no limit
   */
  timeout?: number
  /**
   * Lower runs first: an integer from −1 000 000 to 1 000 000; first in first out within one
   * priority. A task that comes back (a delay, a retry, a release) keeps its place by priority.
   * @default 0
   */
  priority?: number
  /**
   * A plain JSON object stored with the task (at most 4 KiB as JSON): shown in `TaskInfo`, readable
   * in the run as `this.metadata`, never passed to the function. @default none
   */
  metadata?: Record<string, unknown>
  /**
   * Reuse the result of an identical call (same name and arguments; Deferred arguments count by
   * their values) instead of running the function: `true` keeps a result for the queue's
   * `cacheTtl` (one hour unless configured), `{ ttl }` for `ttl` ms. Identical calls made while
   * one runs wait for it (single flight). Failures are never cached. See docs/cache.md.
   * @default false
   */
  cache?:
    | boolean
    | {
        /** ms the result is kept. */
        ttl: number
      }
  /**
   * postgres:// only: enqueue inside the caller's open transaction on this node-postgres client
   * (a `pg.Client` or a `pg.PoolClient` after `BEGIN`). The call resolves once the task's row is
   * written in that transaction; the task exists if and only if the transaction commits, and no
   * worker sees it before. On other backends the call fails with `TransactionsUnsupported`.
   * See docs/postgres.md.
   */
  tx?: TransactionClient
}

/**
 * What the `tx` option takes: a node-postgres client in a transaction, or anything whose `query`
 * runs a statement with `$1`-style parameters in that transaction and resolves to its `rows`.
 */
export interface TransactionClient {
  /** Runs one statement in the caller's transaction. */
  query(
    text: string,
    values?: any[],
  ): Promise<{
    /** The statement's rows. */
    rows: any[]
  }>
}

/** Any function that can be exposed as a task. */
export type TaskFunction = (...args: any[]) => unknown
