/**
 * The leases of memory://'s running tasks: workers renew them; the sweep finds those that lapsed
 * and retries their tasks (after the backoff) or ends them `expired` (backend.ts, steps 4 and 7).
 */
import { backoffDelay, leaseMs, stallMs, type Lease } from '../backend.js'
import { expiredOutcome } from '../../outcome.js'
import type { MemoryEngine } from './engine.js'
import type { QueueState } from './queue-state.js'
import { trimCache } from './shaping.js'

const LAPSED = 'the worker stopped renewing its lease (it died, hung or lost its connection)'

/** Extends the leases whose token still matches; returns the ids of the others (lost). */
export function renew(q: QueueState, leases: readonly Lease[], now: number): string[] {
  const lost: string[] = []
  for (const l of leases) {
    const rec = q.records.get(l.id)
    if (rec?.state === 'processing' && rec.token === l.token)
      rec.leaseUntil = now + leaseMs(l.heartrate)
    else lost.push(l.id)
  }
  return lost
}

/**
 * Retries or expires the tasks of `queue` whose lease lapsed, at most once per `intervalMs`;
 * returns how many it acted on.
 */
export function sweep(
  engine: MemoryEngine,
  queue: string,
  intervalMs: number,
  now: number,
): number {
  const q = engine.q(queue)
  if (now - q.lastSweep < intervalMs) return 0
  q.lastSweep = now
  trimCache(q, now)
  // Sweeping stopped for a while (the event loop was blocked, or no worker swept): leases that
  // lapsed meanwhile get one more from now, so that live workers renew before anything is retried.
  const last = q.sweptAt
  const stalled = last !== undefined && now - last > stallMs(intervalMs)
  q.sweptAt = now
  let handled = 0
  for (const id of [...q.processing]) {
    const rec = q.records.get(id)!
    const until = rec.leaseUntil ?? 0
    if (until >= now) continue
    if (stalled && until > last) {
      rec.leaseUntil = now + leaseMs(rec.task.heartrate)
      continue
    }
    handled++
    if (rec.attempt < rec.task.attempts) {
      const at = now + backoffDelay(rec.task.backoff, rec.attempt, Math.random())
      engine.retry(q, rec, at, { name: 'TaskExpired', message: LAPSED }, now)
    } else {
      engine.finish(rec, expiredOutcome(rec.task.name, queue, id, LAPSED, rec.attempt), now)
    }
  }
  return handled
}
