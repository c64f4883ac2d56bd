/**
 * What a postgres:// backend's LISTEN connection missed while it was lost: the outcomes of this
 * instance's tasks recorded meanwhile. Their notifications went to no one, and a Deferred that no
 * one awaits is not re-checked on a gap (results.ts), so without this it would learn its outcome
 * only when awaited, perhaps after its resultTimeout, as TaskExpired. They are read from the task
 * table by origin and delivered as the notifications would have been.
 */
import type { PgPool } from './pool.js'

/** Outcomes recorded shortly before the connection was lost are read too (in flight, not heard). */
const MARGIN_MS = 5_000

/** One outcome to deliver again: queue, id and outcome as notified (`C…` for a cache hit). */
export interface MissedOutcome {
  queue: string
  id: string
  outcome: string
}

/**
 * The outcomes of tasks enqueued by `origin` that ended in the last `lostMs` (plus a margin), by
 * the database's clock (a duration, so the hosts' clocks need not agree).
 */
export async function missedOutcomes(
  db: PgPool,
  schema: string,
  origin: string,
  lostMs: number,
): Promise<MissedOutcome[]> {
  return db.rows<MissedOutcome>(
    `SELECT queue, id, CASE WHEN cached AND left(outcome, 1) = 'c' THEN 'C' || substr(outcome, 2)
       ELSE outcome END AS outcome
     FROM ${schema}.tasks WHERE origin = $1 AND state = 'done'
       AND finished_at >= ${schema}.now_ms() - $2::bigint AND expires_at > ${schema}.now_ms()`,
    [origin, Math.ceil(lostMs) + MARGIN_MS],
    'redeliver',
  )
}
