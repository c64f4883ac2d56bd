/**
 * TaskInfo: what `broker.task(id)`, `broker.tasks(filter)` and `deferred.info()` report of a task,
 * decoded from what a backend stores; and the listing filter, checked.
 */
import { MAX_DURATION_MS, type ListQuery, type StoredInfo } from './backends/backend.js'
import { readStoredOutcome, storedOutcomeError } from './outcome.js'
import { decodeCall, decodeValue } from './serializer.js'
import type { TaskStatus } from './types.js'

/** What went wrong with a task that failed, expired or was cancelled. */
export interface TaskError {
  /** The remote error's class name (`TypeError`, `TaskExpired`, `TaskCancelled`, …). */
  name: string
  /** Its message. */
  message: string
  /** Its stack, when it had one. */
  stack?: string
  /** Its `code`, when it had one. */
  code?: string
}

/** What is known of one task. */
export interface TaskInfo<T = unknown> {
  /** The task id. */
  id: string
  /** The dotted task name. */
  name: string
  /** Its queue. */
  queue: string
  /** Where it is in its life. */
  status: TaskStatus
  /** Its priority (lower runs first). */
  priority: number
  /** The latest value the task reported with `this.progress()`; undefined before any. */
  progress: unknown
  /** The task's `metadata` option ({} when none was given, or when what is stored is unreadable). */
  metadata: Record<string, unknown>
  /** Runs started so far (0 before the first). */
  attempt: number
  /** Runs allowed in all. */
  attempts: number
  /** When it was enqueued. */
  createdAt: Date
  /** When a held-back task may run. */
  runAt?: Date
  /** When its latest run started. */
  startedAt?: Date
  /** When it ended. */
  finishedAt?: Date
  /** The worker that ran (or runs) it. */
  workerId?: string
  /** The result of a completed task. */
  value?: T
  /**
   * What went wrong, for a failed, expired or cancelled task; a `BadMessage` error (code
   * `ERR_WORQ_BAD_MESSAGE`) for any task whose stored outcome cannot be read.
   */
  error?: TaskError
  /** True when its result came from the result cache (or an identical call it waited for). */
  cached: boolean
  /**
   * The call's arguments, decoded, while the backend keeps the call: as long as the task lives,
   * and after it failed, expired or was cancelled (what `retry` enqueues again); a completed task
   * keeps no call. A Deferred argument whose value was not known at the call reads as a
   * {@link DeferredArg} reference. Undefined when the call is not kept (or cannot be decoded).
   */
  args?: unknown[]
}

/** A Deferred argument in {@link TaskInfo.args}: the task whose result the argument is. */
export interface DeferredArg {
  /** The referenced task. */
  $deferred: {
    /** Its queue. */
    queue: string
    /** Its id. */
    id: string
  }
}

/** Which tasks `broker.tasks()` lists. */
export interface TaskFilter {
  /** One status or several. @default every status */
  status?: TaskStatus | readonly TaskStatus[]
  /** An exact dotted name, or a namespace prefix ending in `.` (`'reports.'`). */
  name?: string
  /** Created more than this many ms ago, or before this Date. */
  olderThan?: number | Date
  /** Created less than this many ms ago, or after this Date. */
  newerThan?: number | Date
  /** At most this many (1–1 000). @default 100 */
  limit?: number
  /** Skip this many first (paging). @default 0 */
  offset?: number
}

const STATUSES: readonly TaskStatus[] = [
  'pending',
  'enqueued',
  'processing',
  'completed',
  'failed',
  'expired',
  'cancelled',
]

/** The arguments of a stored call, Deferred arguments as references; undefined when unreadable. */
function decodeArgs(call: StoredInfo['call']): unknown[] | undefined {
  if (!call) return undefined
  try {
    return decodeCall(call.payload, index => {
      const ref = call.deps[index]
      return ref ? ({ $deferred: { queue: ref.queue, id: ref.id } } satisfies DeferredArg) : null
    })
  } catch {
    return undefined
  }
}

function decodeSafely(text: string): unknown {
  try {
    return decodeValue(text)
  } catch {
    return undefined
  }
}

/** A task's stored metadata: {} when none was given, or when it cannot be read as an object. */
function readMetadata(text: string | undefined): Record<string, unknown> {
  if (!text) return {}
  try {
    const value: unknown = JSON.parse(text)
    return typeof value === 'object' && value !== null && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : {}
  } catch {
    return {}
  }
}

/** Decodes a backend's report of a task. */
export function toTaskInfo<T = unknown>(s: StoredInfo, queue: string): TaskInfo<T> {
  const info: TaskInfo<T> = {
    id: s.id,
    name: s.name,
    queue,
    status: s.status,
    priority: s.priority,
    progress: s.progress === undefined ? undefined : decodeSafely(s.progress),
    metadata: readMetadata(s.metadata),
    attempt: s.attempt,
    attempts: s.attempts,
    createdAt: new Date(s.createdAt),
    cached: s.cached === true,
  }
  if (s.runAt !== undefined) info.runAt = new Date(s.runAt)
  if (s.startedAt !== undefined) info.startedAt = new Date(s.startedAt)
  if (s.finishedAt !== undefined) info.finishedAt = new Date(s.finishedAt)
  if (s.workerId !== undefined) info.workerId = s.workerId
  const args = decodeArgs(s.call)
  if (args !== undefined) info.args = args
  if (s.outcome !== undefined) {
    // An outcome that cannot be read (written by something other than worq) is a BadMessage
    // error, also for a completed task, whose value then cannot be shown.
    if (s.outcome.charAt(0) === 'c') {
      const read = readStoredOutcome(s.outcome, s.name, queue, s.id)
      if (read.ok) info.value = read.value as T
      else info.error = read.error.remote
    } else {
      info.error = storedOutcomeError(s.outcome)
    }
  }
  return info
}

function dateOrAge(name: string, v: unknown, now: number): number {
  if (v instanceof Date && Number.isFinite(v.getTime())) return v.getTime()
  if (typeof v === 'number' && v >= 0 && v <= MAX_DURATION_MS) return Math.floor(now - v)
  throw new TypeError(
    `Expected \`${name}\` to be a Date or a number of ms of age from 0 to ${MAX_DURATION_MS} (100 years), got ${String(v)}`,
  )
}

/** The largest `offset` of a listing (a backend's integer; a listing that deep reads nothing). */
const MAX_OFFSET = 1_000_000_000

const FILTER_KEYS = new Set(['status', 'name', 'olderThan', 'newerThan', 'limit', 'offset'])

/** Checks a filter and turns it into a backend query; a TypeError names a bad field. */
export function listQuery(filter: TaskFilter = {}, now = Date.now()): ListQuery {
  if (typeof filter !== 'object' || filter === null)
    throw new TypeError('Expected the filter to be an object like { status: "failed", limit: 10 }')
  for (const k of Object.keys(filter))
    if (!FILTER_KEYS.has(k))
      throw new TypeError(`Unknown filter field \`${k}\`; known: ${[...FILTER_KEYS].join(', ')}`)
  const query: ListQuery = { limit: filter.limit ?? 100, offset: filter.offset ?? 0 }
  if (!Number.isInteger(query.limit) || query.limit < 1 || query.limit > 1000)
    throw new TypeError(
      `Expected \`limit\` to be an integer from 1 to 1000, got ${String(query.limit)}`,
    )
  if (!Number.isInteger(query.offset) || query.offset < 0 || query.offset > MAX_OFFSET)
    throw new TypeError(
      `Expected \`offset\` to be an integer from 0 to ${MAX_OFFSET}, got ${String(query.offset)}`,
    )
  if (filter.status !== undefined) {
    const statuses = typeof filter.status === 'string' ? [filter.status] : filter.status
    if (!Array.isArray(statuses) || statuses.some(x => !STATUSES.includes(x)))
      throw new TypeError(
        `Expected \`status\` to be one of ${STATUSES.join(', ')}, or an array of them, got ${JSON.stringify(filter.status)}`,
      )
    query.statuses = [...new Set(statuses)]
  }
  if (filter.name !== undefined) {
    if (
      typeof filter.name !== 'string' ||
      !/^[A-Za-z_$][\w$-]*(\.[A-Za-z_$][\w$-]*)*\.?$/.test(filter.name)
    )
      throw new TypeError(
        `Expected \`name\` to be a dotted task name ("math.add") or a prefix ending in "." ("math."), got ${JSON.stringify(filter.name)}`,
      )
    query.name = filter.name
  }
  if (filter.olderThan !== undefined)
    query.createdBefore = dateOrAge('olderThan', filter.olderThan, now)
  if (filter.newerThan !== undefined)
    query.createdAfter = dateOrAge('newerThan', filter.newerThan, now)
  return query
}
