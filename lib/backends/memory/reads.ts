/**
 * What memory:// reports of its tasks and queues: one task's info, listings, counts, and the
 * waiting tasks a purge step takes.
 */
import type { ListQuery, QueueInfo, StoredCall, StoredInfo } from '../backend.js'
import { outcomeStatus } from '../../outcome.js'
import { storedCall } from '../records.js'
import type { TaskStatus } from '../../types.js'
import type { QueueState, TaskRecord } from './queue-state.js'

/** The status a record reports (delayed and held tasks are `enqueued`). */
export function statusOf(rec: TaskRecord): TaskStatus {
  switch (rec.state) {
    case 'done':
      return outcomeStatus(rec.outcome!)
    case 'delayed':
    case 'held':
      return 'enqueued'
    default:
      return rec.state
  }
}

function callOf(rec: TaskRecord): StoredCall | undefined {
  if (rec.state === 'done' && rec.task.payload === '') return undefined
  return storedCall(rec.task)
}

/** A record as a backend reports it. */
export function infoOf(rec: TaskRecord): StoredInfo {
  const t = rec.task
  const info: StoredInfo = {
    id: t.id,
    name: t.name,
    status: statusOf(rec),
    priority: t.priority,
    attempt: rec.attempt,
    attempts: t.attempts,
    createdAt: rec.createdAt,
  }
  if (rec.progress !== undefined) info.progress = rec.progress
  if (t.metadata) info.metadata = t.metadata
  const runAt = rec.state === 'delayed' ? rec.dueAt : t.runAt > 0 ? t.runAt : undefined
  if (runAt !== undefined) info.runAt = runAt
  if (rec.startedAt !== undefined) info.startedAt = rec.startedAt
  if (rec.finishedAt !== undefined && rec.state === 'done') info.finishedAt = rec.finishedAt
  if (rec.workerId !== undefined) info.workerId = rec.workerId
  if (rec.outcome !== undefined && rec.state === 'done') info.outcome = rec.outcome
  if (rec.cached) info.cached = true
  const call = callOf(rec)
  if (call) info.call = call
  return info
}

function matches(rec: TaskRecord, q: ListQuery): boolean {
  if (q.statuses && !q.statuses.includes(statusOf(rec))) return false
  if (q.name !== undefined) {
    const name = rec.task.name
    if (q.name.endsWith('.') ? !name.startsWith(q.name) : name !== q.name) return false
  }
  if (q.createdBefore !== undefined && !(rec.createdAt < q.createdBefore)) return false
  if (q.createdAfter !== undefined && !(rec.createdAt > q.createdAfter)) return false
  return true
}

/** Listed tasks matching `query`, newest first (records keep creation order). */
export function list(state: QueueState, query: ListQuery, now: number): StoredInfo[] {
  const found: StoredInfo[] = []
  const all = [...state.records.values()]
  let skip = query.offset
  for (let i = all.length - 1; i >= 0 && found.length < query.limit; i--) {
    const rec = all[i]!
    if (!rec.listed || (rec.state === 'done' && (rec.expiresAt ?? 0) <= now)) continue
    if (!matches(rec, query)) continue
    if (skip > 0) {
      skip--
      continue
    }
    found.push(infoOf(rec))
  }
  return found
}

/** Counts and live workers of a queue (none known: all zero). */
export function inspect(q: QueueState | undefined, now: number): QueueInfo {
  if (!q)
    return {
      waiting: 0,
      delayed: 0,
      pending: 0,
      processing: 0,
      oldestWaitingMs: null,
      paused: false,
      workers: [],
    }
  const first = q.wait.peek()
  const oldest = first === undefined ? undefined : q.records.get(first)?.readyAt
  for (const [id, w] of q.workers) if (w.until <= now) q.workers.delete(id)
  let held = 0
  for (const line of q.held.values()) held += line.size
  return {
    waiting: q.wait.size + held,
    delayed: q.delayed.size,
    pending: q.pending.size,
    processing: q.processing.size,
    oldestWaitingMs: oldest === undefined ? null : now - oldest,
    paused: q.settings.paused,
    workers: [...q.workers.values()].map(w => w.info),
  }
}

/** True when task `id` ended cancelled (or its record went: ignoreResult). */
export function cancelledNow(q: QueueState, id: string): boolean {
  const rec = q.records.get(id)
  return !rec || (rec.state === 'done' && rec.outcome?.charAt(0) === 'k')
}

/** Up to `max` ids of `q`'s waiting tasks: pending first, then enqueued, delayed, held back. */
export function waitingIds(q: QueueState, max: number): string[] {
  const ids: string[] = []
  const lines: Iterable<string>[] = [q.pending, q.wait, q.delayed, ...q.held.values()]
  for (const line of lines)
    for (const id of line) {
      if (ids.length === max) return ids
      ids.push(id)
    }
  return ids
}
