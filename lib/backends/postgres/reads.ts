/**
 * What the postgres:// backend reports from its rows: one task's info, a listing's SQL, queue
 * counts and events, with the meanings reads.ts gives them for memory://.
 */
import type { ListQuery, MinuteCounts, StoredEvent, StoredInfo, TaskState } from '../backend.js'
import { outcomeStatus, storedOutcomeError } from '../../outcome.js'
import type { TaskStatus } from '../../types.js'

/** A row of `<schema>.tasks` as node-postgres returns it (bigint columns as strings). */
export interface TaskRow {
  id: string
  name: string
  state: string
  payload: string
  deps: StoredInfo['call'] extends infer C ? (C extends { deps: infer D } ? D : never) : never
  on_error: 'fail' | 'pass'
  ignore_result: boolean
  result_timeout: string
  heartrate: string
  attempts: number
  backoff: { type: 'fixed' | 'exponential'; delay: number; jitter: number; maxDelay: number }
  run_at: string
  timeout: string
  priority: number
  metadata: string
  cache: { key: string; ttl: number; template: string } | null
  attempt: number
  due_at: string | null
  outcome: string | null
  created_at: string
  started_at: string | null
  finished_at: string | null
  worker_id: string | null
  progress: string | null
  cached: boolean
}

/** The status a row reports (delayed and held tasks are `enqueued`). */
export function statusOfRow(row: Pick<TaskRow, 'state' | 'outcome'>): TaskStatus {
  if (row.state === 'done') return outcomeStatus(row.outcome!)
  if (row.state === 'delayed' || row.state === 'held') return 'enqueued'
  return row.state as TaskStatus
}

/** A row's state, as `status()` reports it. */
export function stateOfRow(row: Pick<TaskRow, 'state' | 'outcome' | 'cached'>): TaskState {
  if (row.state !== 'done') return { status: statusOfRow(row) }
  const state: TaskState = { status: outcomeStatus(row.outcome!), outcome: row.outcome! }
  if (row.cached) state.cached = true
  return state
}

/** A row as a backend reports it. */
export function infoOfRow(row: TaskRow): StoredInfo {
  const info: StoredInfo = {
    id: row.id,
    name: row.name,
    status: statusOfRow(row),
    priority: row.priority,
    attempt: row.attempt,
    attempts: row.attempts,
    createdAt: Number(row.created_at),
  }
  const done = row.state === 'done'
  if (row.progress !== null) info.progress = row.progress
  if (row.metadata) info.metadata = row.metadata
  const runAt =
    row.state === 'delayed' ? Number(row.due_at) : Number(row.run_at) > 0 ? Number(row.run_at) : 0
  if (runAt > 0) info.runAt = runAt
  if (row.started_at !== null) info.startedAt = Number(row.started_at)
  if (row.finished_at !== null && done) info.finishedAt = Number(row.finished_at)
  if (row.worker_id !== null) info.workerId = row.worker_id
  if (row.outcome !== null && done) info.outcome = row.outcome
  if (row.cached) info.cached = true
  if (!(done && row.payload === ''))
    info.call = {
      payload: row.payload,
      deps: row.deps,
      onError: row.on_error,
      ignoreResult: row.ignore_result,
      resultTimeout: Number(row.result_timeout),
      heartrate: Number(row.heartrate),
      attempts: row.attempts,
      backoff: row.backoff,
      timeout: Number(row.timeout),
      cacheTtl: row.cache?.ttl ?? 0,
    }
  return info
}

/** SQL conditions on a task row for each status. */
const STATUS_SQL: Record<TaskStatus, string> = {
  pending: "state = 'pending'",
  enqueued: "state IN ('enqueued', 'delayed', 'held')",
  processing: "state = 'processing'",
  completed: "state = 'done' AND left(outcome, 1) = 'c'",
  failed: "state = 'done' AND left(outcome, 1) = 'f'",
  expired: "state = 'done' AND left(outcome, 1) = 'x'",
  cancelled: "state = 'done' AND left(outcome, 1) = 'k'",
}

/** The SQL and parameters of a listing (newest first). */
export function listSql(schema: string, queue: string, query: ListQuery): [string, unknown[]] {
  const params: unknown[] = [queue]
  const where = [
    'queue = $1',
    'listed',
    `NOT (state = 'done' AND expires_at <= ${schema}.now_ms())`,
  ]
  if (query.statuses)
    where.push(
      query.statuses.length === 0
        ? 'false'
        : `(${query.statuses.map(s => `(${STATUS_SQL[s]})`).join(' OR ')})`,
    )
  if (query.name !== undefined) {
    params.push(query.name)
    where.push(
      query.name.endsWith('.')
        ? `starts_with(name, $${params.length})`
        : `name = $${params.length}`,
    )
  }
  if (query.createdBefore !== undefined) {
    params.push(query.createdBefore)
    where.push(`created_at < $${params.length}`)
  }
  if (query.createdAfter !== undefined) {
    params.push(query.createdAfter)
    where.push(`created_at > $${params.length}`)
  }
  params.push(query.limit, query.offset)
  return [
    `SELECT * FROM ${schema}.tasks WHERE ${where.join(' AND ')} ORDER BY created_seq DESC LIMIT $${params.length - 1} OFFSET $${params.length}`,
    params,
  ]
}

/** An event row's body as a StoredEvent (an end event's outcome becomes its error). */
export function eventOf(n: string, body: Record<string, unknown>): StoredEvent {
  const { outcome, ...rest } = body as { outcome?: string } & Omit<StoredEvent, 'eventId'>
  const event: StoredEvent = { ...rest, eventId: n }
  if (typeof outcome === 'string') {
    const { stack: _stack, ...error } = storedOutcomeError(outcome)
    event.error = error
  }
  if (event.error === null) delete event.error
  return event
}

/** A metrics row as MinuteCounts. */
export function countsOf(row: Record<string, unknown>): MinuteCounts {
  return {
    minute: Number(row.minute),
    completed: Number(row.completed),
    failed: Number(row.failed),
    retried: Number(row.retried),
    expired: Number(row.expired),
    cancelled: Number(row.cancelled),
    wait: (row.wait as string[]).map(Number),
    run: (row.run as string[]).map(Number),
    waitSum: Number(row.wait_sum),
    runSum: Number(row.run_sum),
  }
}
