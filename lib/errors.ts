/**
 * Error classes of worq. Each has a stable `code`; messages say what to change.
 *
 * | code | class | when |
 * |---|---|---|
 * | `ERR_WORQ_TASK_FAILED` | TaskFailure | the remote function threw, was not exposed, or its result could not be stored |
 * | `ERR_WORQ_TASK_EXPIRED` | TaskExpired | the worker holding the task stopped renewing its lease, or the result is gone |
 * | `ERR_WORQ_TASK_CANCELLED` | TaskCancelled | `cancel()` or `purge()` ended the task (before it ran, or while it ran) |
 * | `ERR_WORQ_DUPLICATE_TASK` | DuplicateTask | a task with that id is pending, enqueued or processing |
 * | `ERR_WORQ_WAIT_TIMEOUT` | WaitTimeout | `result(ms)` ran out of time |
 * | `ERR_WORQ_NO_RESULT` | NoResultYet | `value` was read before any outcome was fetched |
 * | `ERR_WORQ_CLOSED` | BrokerClosed | the broker was used after `close()` |
 * | `ERR_WORQ_PAYLOAD_TOO_LARGE` | PayloadTooLarge | a message or result exceeds `maxPayloadBytes` |
 * | `ERR_WORQ_BAD_URL` | BadUrl | a backend URL cannot be understood |
 * | `ERR_WORQ_TASK_TIMEOUT` | TaskTimeout | (remote) a run took longer than its `timeout` |
 * | `ERR_WORQ_LEASE_LOST` | LeaseLost | (remote) the worker lost the task's lease; its result will be refused |
 * | `ERR_WORQ_UNSUPPORTED_SERVER` | UnsupportedServer | the Redis server is older than 6.2 |
 * | `ERR_WORQ_BACKEND_FULL` | BackendFull | Redis refused an operation: it is out of memory (`maxmemory` under `noeviction`) |
 * | `ERR_WORQ_LISTING_OFF` | ListingOff | `tasks()` on a queue whose `listing` setting is off |
 * | `ERR_WORQ_NOT_RETRYABLE` | NotRetryable | `retry(id)` of a task that did not fail, expire or get cancelled, or whose call was not kept |
 * | `ERR_WORQ_BACKEND_UNREACHABLE` | BackendUnreachable | the server (Redis or PostgreSQL) did not answer within `connectTimeoutMs` |
 * | `ERR_WORQ_AUTH_FAILED` | AuthFailed | the server refused the URL's credentials (a wrong Redis password or user, a PostgreSQL role that does not exist) |
 * | `ERR_WORQ_SCHEMA_TOO_NEW` | SchemaTooNew | the database's worq schema is newer than this worq |
 * | `ERR_WORQ_MIGRATION_DENIED` | MigrationDenied | the PostgreSQL role may not create or upgrade worq's schema, or not use it |
 * | `ERR_WORQ_NO_TRANSACTIONS` | TransactionsUnsupported | the `tx` option on a backend other than postgres:// |
 * | `ERR_WORQ_STATEMENT_TIMEOUT` | StatementTimeout | the PostgreSQL server cancelled a worq statement for its `statement_timeout` or `lock_timeout` |
 * | `ERR_WORQ_LISTENER` | ListenerError | a pool event listener threw (reported as `pool:error`; lib/worker/events.ts) |
 * | `ERR_WORQ_REPLICATION_TIMEOUT` | ReplicationTimeout | with `replicas`, fewer replicas than asked acknowledged a write in time (it holds on the master) |
 */
import { redactUrl } from './redact-url.js'

/** What a remote error looked like, carried across the wire. */
export interface RemoteError {
  /** The remote error's class name, e.g. `TypeError`, or `NoSuchTask`. */
  name: string
  /** The remote error's message. */
  message: string
  /** The remote error's stack, as the worker printed it. */
  stack?: string
  /** The remote error's `cause`, as it was serialised. */
  cause?: unknown
  /** The remote error's `code`, when it had one. */
  code?: string
}

/** Base class of every worq error. */
export class WorqError extends Error {
  /** Stable machine-readable code, e.g. `ERR_WORQ_TASK_FAILED`. */
  readonly code: string
  constructor(code: string, message: string, options?: ErrorOptions) {
    super(message, options)
    this.name = new.target.name
    this.code = code
  }
}

/** A task failed remotely. Its message reads `math.add [default:<id>] Error: boom`. */
export class TaskFailure extends WorqError {
  /** Dotted name of the task that failed. */
  readonly taskName: string
  /** Queue the task ran on. */
  readonly queue: string
  /** Id of the task that failed (for a cascaded failure: the argument's task). */
  readonly taskId: string
  /** The remote error: class name, message, stack and cause. */
  readonly remote: RemoteError
  /** How many attempts were made, when known. */
  readonly attempts: number | undefined
  constructor(
    taskName: string,
    queue: string,
    taskId: string,
    remote: RemoteError,
    attempts?: number,
    code = 'ERR_WORQ_TASK_FAILED',
  ) {
    const tries = attempts && attempts > 1 ? ` (after ${attempts} attempts)` : ''
    super(code, `${taskName} [${queue}:${taskId}] ${remote.name}: ${remote.message}${tries}`)
    this.taskName = taskName
    this.queue = queue
    this.taskId = taskId
    this.remote = remote
    this.attempts = attempts
  }
}

/** The task's worker stopped renewing its lease (it died or hung), or its result is gone. */
export class TaskExpired extends TaskFailure {
  constructor(taskName: string, queue: string, taskId: string, reason: string, attempts?: number) {
    super(
      taskName,
      queue,
      taskId,
      { name: 'TaskExpired', message: reason },
      attempts,
      'ERR_WORQ_TASK_EXPIRED',
    )
  }
}

/** The task was cancelled by `cancel()` or `purge()` (before it ran, or while it ran). */
export class TaskCancelled extends TaskFailure {
  constructor(taskName: string, queue: string, taskId: string) {
    super(
      taskName,
      queue,
      taskId,
      { name: 'TaskCancelled', message: 'the task was cancelled' },
      undefined,
      'ERR_WORQ_TASK_CANCELLED',
    )
  }
}

/** A task with this id is already pending, enqueued or processing. */
export class DuplicateTask extends WorqError {
  /** Dotted name of the call that was refused. */
  readonly taskName: string
  /** Queue it was sent to. */
  readonly queue: string
  /** The id already taken. */
  readonly taskId: string
  constructor(taskName: string, queue: string, taskId: string) {
    super(
      'ERR_WORQ_DUPLICATE_TASK',
      `${taskName} [${queue}:${taskId}] cannot enqueue task with duplicate id: a task with this id is still pending, enqueued or processing; wait for it or choose another \`id\``,
    )
    this.taskName = taskName
    this.queue = queue
    this.taskId = taskId
  }
}

/** `Deferred.result(ms)` ran out of time before the task finished. */
export class WaitTimeout extends WorqError {
  constructor(taskName: string, queue: string, taskId: string, ms: number) {
    super(
      'ERR_WORQ_WAIT_TIMEOUT',
      `${taskName} [${queue}:${taskId}] no result within ${ms} ms; wait longer, or check that a worker serves queue "${queue}"`,
    )
  }
}

/** `Deferred.value` was read before `wait`, `status` or `result` fetched an outcome. */
export class NoResultYet extends WorqError {
  constructor(taskName: string, queue: string, taskId: string) {
    super(
      'ERR_WORQ_NO_RESULT',
      `${taskName} [${queue}:${taskId}] has no result yet; call \`await deferred.wait(ms)\` (true when it finished) before reading \`value\``,
    )
  }
}

/** The broker (or its backend) was closed. */
export class BrokerClosed extends WorqError {
  constructor(what = 'broker') {
    super('ERR_WORQ_CLOSED', `this ${what} is closed; create a new one with getBroker(url, name)`)
  }
}

/** A serialized message or result is larger than the backend accepts. */
export class PayloadTooLarge extends WorqError {
  constructor(what: string, bytes: number, limit: number) {
    super(
      'ERR_WORQ_PAYLOAD_TOO_LARGE',
      `${what} is ${bytes} bytes, over the limit of ${limit} bytes; pass a reference (a key or a path) instead, or raise \`maxPayloadBytes\``,
    )
  }
}

/** A backend URL could not be understood. */
export class BadUrl extends WorqError {
  constructor(url: string, problem: string) {
    super('ERR_WORQ_BAD_URL', `bad backend URL "${redactUrl(url)}": ${problem}`)
  }
}

/** A run took longer than its `timeout`. It is the abort reason of the task's signal. */
export class TaskTimeout extends WorqError {
  constructor(taskName: string, ms: number) {
    super(
      'ERR_WORQ_TASK_TIMEOUT',
      `${taskName} took longer than its timeout of ${ms} ms; raise \`timeout\` or make the task stop when \`this.signal\` aborts`,
    )
  }
}

/** The worker lost the task's lease (it was swept and given to someone else). The abort reason of the task's signal. */
export class LeaseLost extends WorqError {
  constructor(taskName: string) {
    super(
      'ERR_WORQ_LEASE_LOST',
      `${taskName} lost its lease (renewals stopped reaching the backend in time); its result will be refused`,
    )
  }
}

/** The Redis server is older than worq needs (6.2: RPOP with a count, ZRANGE BYSCORE). */
export class UnsupportedServer extends WorqError {
  constructor(version: string, needed: string) {
    super(
      'ERR_WORQ_UNSUPPORTED_SERVER',
      `the Redis server is version ${version}; worq needs Redis ${needed} or newer: upgrade the server, or point the broker at a newer one`,
    )
  }
}

/**
 * Fewer replicas than `replicas` acknowledged an enqueue or a finish within `replicaTimeoutMs`. The
 * write happened on the master and may still reach the replicas; it is not confirmed to survive a
 * failover. Sending the same call again is safe (an enqueue and a finish recognise themselves).
 */
export class ReplicationTimeout extends WorqError {
  constructor(operation: string, wanted: number, acknowledged: number, ms: number) {
    super(
      'ERR_WORQ_REPLICATION_TIMEOUT',
      `${operation}: ${acknowledged} of ${wanted} replicas acknowledged the write within ${ms} ms; check the replicas' link to the master (INFO replication), raise \`replicaTimeoutMs\`, or lower \`replicas\``,
    )
  }
}

/**
 * Redis refused an operation because it is out of memory: `used_memory` passed `maxmemory` and the
 * eviction policy is `noeviction` (the only one under which a queue keeps its tasks). The operation
 * did not run: nothing was written, and sending it again once memory is free is safe.
 */
export class BackendFull extends WorqError {
  /** The operation Redis refused (`enqueue`, `exchange`, `register-worker`, …). */
  readonly operation: string

  constructor(operation: string, options?: ErrorOptions) {
    super(
      'ERR_WORQ_BACKEND_FULL',
      `Redis refused ${operation}: it is out of memory (used_memory over maxmemory, and its policy evicts nothing), so nothing was written; raise maxmemory, keep finished outcomes for less time (resultTimeout), or purge what is not needed, then call again`,
      options,
    )
    this.operation = operation
  }
}

/** `broker.tasks()` on a queue whose `listing` setting is off: nothing is indexed to list. */
export class ListingOff extends WorqError {
  constructor(queue: string) {
    super(
      'ERR_WORQ_LISTING_OFF',
      `queue "${queue}" does not index its tasks (its \`listing\` setting is off); turn it on with broker.configure({ listing: true }) to list tasks enqueued from then on`,
    )
  }
}

/** `broker.retry(id)` of a task that did not fail, expire or get cancelled (or whose call is gone). */
export class NotRetryable extends WorqError {
  /** The task's dotted name. */
  readonly taskName: string
  /** Its queue. */
  readonly queue: string
  /** Its id. */
  readonly taskId: string
  constructor(taskName: string, queue: string, taskId: string, status: string) {
    super(
      'ERR_WORQ_NOT_RETRYABLE',
      `${taskName} [${queue}:${taskId}] is ${status}: only a failed, expired or cancelled task can be retried (and only while its outcome is kept)`,
    )
    this.taskName = taskName
    this.queue = queue
    this.taskId = taskId
  }
}

/** The backend's server could not be reached (or stopped answering) within its connect timeout. */
export class BackendUnreachable extends WorqError {
  constructor(url: string, detail: string, options?: ErrorOptions) {
    super(
      'ERR_WORQ_BACKEND_UNREACHABLE',
      `cannot reach the backend at "${redactUrl(url)}": ${detail}; check that the server runs and accepts connections there`,
      options,
    )
  }
}

/**
 * The server refused the credentials worq connects with: on Redis a wrong password or user
 * (`WRONGPASS`), or none where one is needed (`NOAUTH`); on PostgreSQL a role that does not exist,
 * a wrong password, or a `pg_hba.conf` that admits no such connection (SQLSTATE class 28). Nothing
 * was sent. `cause` is the driver's error; the message says what to change.
 */
export class AuthFailed extends WorqError {
  constructor(url: string, detail: string, fix: string, options?: ErrorOptions) {
    super(
      'ERR_WORQ_AUTH_FAILED',
      `the server at "${redactUrl(url)}" refused worq's credentials (${detail}); ${fix}`,
      options,
    )
  }
}

/** The database's worq schema was made by a newer worq than this one. */
export class SchemaTooNew extends WorqError {
  constructor(schema: string, found: number, known: number) {
    super(
      'ERR_WORQ_SCHEMA_TOO_NEW',
      `the PostgreSQL schema "${schema}" is at worq schema version ${found}, newer than this worq knows (${known}); upgrade worq in this process, or point it at another ?schema=`,
    )
  }
}

/**
 * The PostgreSQL role may not create or upgrade worq's schema (no CREATE on the database or the
 * schema), or may not read it (no USAGE on it). The schema is left as it was.
 */
export class MigrationDenied extends WorqError {
  constructor(schema: string, cause: unknown) {
    super(
      'ERR_WORQ_MIGRATION_DENIED',
      `this PostgreSQL role may not create, upgrade or read worq's schema "${schema}" (${(cause as Error)?.message ?? String(cause)}); run \`worq migrate <url>\` as a role that may (the database's owner), then grant this role USAGE on the schema and SELECT, INSERT, UPDATE, DELETE on its tables (docs/postgres.md, "Roles")`,
      { cause },
    )
  }
}

/** The `tx` task option (or `broker.transaction`) on a backend without transactions. */
export class TransactionsUnsupported extends WorqError {
  constructor(url: string) {
    super(
      'ERR_WORQ_NO_TRANSACTIONS',
      `the \`tx\` option needs a postgres:// backend; "${redactUrl(url)}" cannot enqueue inside a database transaction`,
    )
  }
}

/**
 * The PostgreSQL server cancelled one of worq's statements because it ran past the session's
 * `statement_timeout`, or waited for a lock past its `lock_timeout`. The statement's transaction
 * was rolled back: nothing of the operation was written, and sending it again is safe.
 */
export class StatementTimeout extends WorqError {
  /** The worq operation whose statement was cancelled, e.g. `enqueue` or `exchange`. */
  readonly operation: string
  /** The server setting that cancelled it. */
  readonly setting: 'statement_timeout' | 'lock_timeout'

  constructor(
    operation: string,
    setting: 'statement_timeout' | 'lock_timeout',
    options?: ErrorOptions,
  ) {
    super(
      'ERR_WORQ_STATEMENT_TIMEOUT',
      `the PostgreSQL server cancelled worq's \`${operation}\` statement after its ${setting}; nothing of it was written, so it can be sent again. Raise ${setting} for worq's connections (ALTER ROLE <role> SET ${setting} = '30s', or ALTER DATABASE), or find the session holding the lock it waited for (pg_locks, pg_stat_activity)`,
      options,
    )
    this.operation = operation
    this.setting = setting
  }
}
