/**
 * What a memory:// queue records as things happen: events (when its `events` setting is on) and
 * per-minute metrics (when `metrics` is on), kept as the Redis scripts keep them.
 */
import { METRICS_MINUTES, TIME_BUCKETS_MS, timeBucket } from '../backend.js'
import type { MinuteCounts, StoredEvent } from '../backend.js'
import { outcomeError } from '../../outcome.js'
import type { QueueState, TaskRecord } from './queue-state.js'

type NewEvent = Omit<StoredEvent, 'eventId'>

/** Appends one event for `rec` (or for the queue when `rec` is undefined). */
export function emit(
  q: QueueState,
  type: StoredEvent['type'],
  rec: TaskRecord | undefined,
  now: number,
  extra: Partial<NewEvent> = {},
): void {
  if (!q.settings.events) return
  const event: NewEvent = {
    type,
    id: rec?.task.id ?? '',
    name: rec?.task.name ?? '',
    time: now,
    ...extra,
  }
  q.events.append([event], q.settings.eventsMax)
}

/** The event of a task that ended with `outcome` (its type from the outcome's status). */
export function endEvent(
  q: QueueState,
  rec: TaskRecord,
  outcome: string,
  now: number,
  cached: boolean,
): void {
  const extra: Partial<NewEvent> = {}
  if (rec.attempt > 0) extra.attempt = rec.attempt
  if (rec.workerId !== undefined) extra.workerId = rec.workerId
  if (rec.startedAt !== undefined) extra.ms = now - rec.startedAt
  const kind = outcome.charAt(0)
  if (kind !== 'c') {
    const { stack: _stack, ...error } = outcomeError(outcome)
    extra.error = error
  }
  const type =
    kind === 'c'
      ? cached
        ? 'cached'
        : 'completed'
      : kind === 'f'
        ? 'failed'
        : kind === 'x'
          ? 'expired'
          : 'cancelled'
  emit(q, type, rec, now, extra)
}

function minuteOf(now: number): number {
  return now - (now % 60_000)
}

/** Counts all zero, for `minute` (0 for totals). */
export function zeroCounts(minute: number): MinuteCounts {
  return {
    minute,
    completed: 0,
    failed: 0,
    retried: 0,
    expired: 0,
    cancelled: 0,
    wait: new Array<number>(TIME_BUCKETS_MS.length + 1).fill(0),
    run: new Array<number>(TIME_BUCKETS_MS.length + 1).fill(0),
    waitSum: 0,
    runSum: 0,
  }
}

/** This minute's counts and the totals, when the queue keeps metrics. */
function counts(q: QueueState, now: number): MinuteCounts[] {
  if (!q.settings.metrics) return []
  const minute = minuteOf(now)
  let m = q.metrics.get(minute)
  if (!m) {
    q.metrics.set(minute, (m = zeroCounts(minute)))
    const oldest = minute - METRICS_MINUTES * 60_000
    for (const k of q.metrics.keys()) if (k <= oldest) q.metrics.delete(k)
  }
  return [m, (q.totals ??= zeroCounts(0))]
}

/** Counts an end (`c`, `f`, `x`, `k` outcome) or a retry (`r`), with the run's time when it ran. */
export function countEnd(
  q: QueueState,
  kind: string,
  runMs: number | undefined,
  now: number,
): void {
  for (const m of counts(q, now)) {
    if (kind === 'c') m.completed++
    else if (kind === 'f') m.failed++
    else if (kind === 'x') m.expired++
    else if (kind === 'k') m.cancelled++
    else if (kind === 'r') m.retried++
    if (runMs !== undefined) {
      m.run[timeBucket(runMs)]!++
      m.runSum += runMs
    }
  }
}

/** Counts a start after `waitMs` in line. */
export function countStart(q: QueueState, waitMs: number, now: number): void {
  for (const m of counts(q, now)) {
    m.wait[timeBucket(waitMs)]!++
    m.waitSum += waitMs
  }
}
