/**
 * What a postgres:// backend reads and writes with plain statements, without its plpgsql
 * functions' atomic flows: worker registrations, queue counts, settings, the result cache's
 * upkeep, limits and schedules as stored, events and metrics.
 */
import {
  DEFAULT_SETTINGS,
  limitRecord,
  type EventBatch,
  type Limit,
  type MinuteCounts,
  type QueueInfo,
  type QueueSettings,
  type ReadOptions,
  type StoredSchedule,
  type WorkerInfo,
} from '../backend.js'
import { readableSchedule } from '../queue-records.js'
import type { PgPool } from './pool.js'
import { countsOf, eventOf } from './reads.js'

/** The plain-statement operations of one backend's schema. */
export class QueueStore {
  readonly #db: PgPool
  readonly schema: string
  readonly #open: () => void

  constructor(db: PgPool, schema: string, open: () => void) {
    this.#db = db
    this.schema = schema
    this.#open = open
  }

  async registerWorker(queue: string, info: WorkerInfo, ttlMs: number): Promise<void> {
    const s = this.schema
    await this.#db.rows(
      `INSERT INTO ${s}.workers (queue, id, info, until)
       SELECT $1, $2, $3::jsonb || jsonb_build_object('seenAt', n), n + $4 FROM (SELECT ${s}.now_ms() AS n) t
       ON CONFLICT (queue, id) DO UPDATE SET info = excluded.info, until = excluded.until`,
      [queue, info.id, JSON.stringify(info), ttlMs],
    )
  }

  async unregisterWorker(queue: string, id: string): Promise<void> {
    const s = this.schema
    await this.#db.rows(
      `WITH gone AS (DELETE FROM ${s}.workers WHERE queue = $1 AND id = $2)
       UPDATE ${s}.queues SET swept_at = NULL WHERE name = $1 AND NOT EXISTS (SELECT 1 FROM ${s}.tasks
         WHERE queue = $1 AND state IN ('processing', 'enqueued', 'delayed'))`,
      [queue, id],
    )
  }

  async inspect(queue: string): Promise<QueueInfo> {
    const s = this.schema
    const rows = await this.#db.rows<Record<string, string | null> & { workers: WorkerInfo[] }>(
      `SELECT count(*) FILTER (WHERE state IN ('enqueued', 'held')) AS waiting,
         count(*) FILTER (WHERE state = 'delayed') AS delayed,
         count(*) FILTER (WHERE state = 'pending') AS pending,
         count(*) FILTER (WHERE state = 'processing') AS processing,
         (SELECT ${s}.now_ms() - ready_at FROM ${s}.tasks WHERE queue = $1 AND state = 'enqueued'
           ORDER BY priority, line_seq LIMIT 1) AS oldest,
         coalesce((SELECT paused FROM ${s}.queues WHERE name = $1), false) AS paused,
         (SELECT coalesce(jsonb_agg(info ORDER BY info->>'startedAt', id), '[]') FROM ${s}.workers
           WHERE queue = $1 AND until > ${s}.now_ms()) AS workers
       FROM ${s}.tasks WHERE queue = $1 AND state <> 'done'`,
      [queue],
    )
    const r = rows[0]!
    return {
      waiting: Number(r.waiting),
      delayed: Number(r.delayed),
      pending: Number(r.pending),
      processing: Number(r.processing),
      oldestWaitingMs: r.oldest === null ? null : Math.max(0, Number(r.oldest)),
      paused: r.paused as unknown as boolean,
      workers: r.workers,
    }
  }

  async settings(queue: string): Promise<QueueSettings> {
    this.#open()
    const rows = await this.#db.rows<Record<string, unknown>>(
      `SELECT * FROM ${this.schema}.queues WHERE name = $1`,
      [queue],
    )
    const r = rows[0]
    if (!r) return { ...DEFAULT_SETTINGS }
    return {
      paused: r.paused as boolean,
      events: r.events as boolean,
      eventsMax: Number(r.events_max),
      metrics: r.metrics as boolean,
      listing: r.listing as boolean,
      cacheSize: Number(r.cache_size),
      cacheTtl: Number(r.cache_ttl),
    }
  }

  async configure(
    queue: string,
    patch: Partial<Omit<QueueSettings, 'paused'>>,
  ): Promise<QueueSettings> {
    this.#open()
    const s = this.schema
    // Under the queue's lock, after a fold (schema/008_event_sets.sql, which reads each setting
    // by its name in the patch; JSON leaves out the ones not given).
    await this.#db.rows(`SELECT 1 FROM ${s}.configure($1, $2::jsonb)`, [
      queue,
      JSON.stringify(patch),
    ])
    if (patch.cacheSize !== undefined)
      await this.#db.rows(`SELECT ${s}.trim_cache($1, ${s}.now_ms())`, [queue])
    return this.settings(queue)
  }

  async cacheDelete(queue: string, key: string): Promise<boolean> {
    const rows = await this.#db.rows(
      `DELETE FROM ${this.schema}.cache WHERE queue = $1 AND key = $2 RETURNING 1`,
      [queue, key],
    )
    return rows.length > 0
  }

  async cacheClear(queue: string): Promise<number> {
    const s = this.schema
    return Number(
      await this.#db.value(
        `WITH gone AS (DELETE FROM ${s}.cache WHERE queue = $1 RETURNING expires_at)
         SELECT count(*) FILTER (WHERE expires_at > ${s}.now_ms()) AS v FROM gone`,
        [queue],
      ),
    )
  }

  async cacheSize(queue: string): Promise<number> {
    const s = this.schema
    return Number(
      await this.#db.value(
        `SELECT count(*) AS v FROM ${s}.cache WHERE queue = $1 AND expires_at > ${s}.now_ms()`,
        [queue],
      ),
    )
  }

  async listLimits(queue: string): Promise<Record<string, Limit>> {
    // One that does not read as a limit binds nothing and is left out: the rule take_slots binds by.
    const rows = await this.#db.rows<{ name: string; spec: Limit }>(
      `SELECT name, spec FROM ${this.schema}.limits
       WHERE queue = $1 AND ${this.schema}.limit_readable(spec) ORDER BY name`,
      [queue],
    )
    return limitRecord(rows.map(r => [r.name, r.spec]))
  }

  async putSchedule(queue: string, schedule: StoredSchedule): Promise<void> {
    const s = this.schema
    await this.#db.rows(
      `WITH up AS (INSERT INTO ${s}.schedules (queue, id, body) VALUES ($1, $2, $3::jsonb)
         ON CONFLICT (queue, id) DO UPDATE SET body = excluded.body RETURNING 1)
       SELECT ${s}.tell($1, '{"type":"schedules"}') FROM up`,
      [queue, schedule.id, JSON.stringify(schedule)],
    )
  }

  async removeSchedule(queue: string, id: string): Promise<boolean> {
    const s = this.schema
    const rows = await this.#db.rows(
      `WITH gone AS (DELETE FROM ${s}.schedules WHERE queue = $1 AND id = $2 RETURNING 1)
       SELECT ${s}.tell($1, '{"type":"schedules"}') FROM gone`,
      [queue, id],
    )
    return rows.length > 0
  }

  async schedules(queue: string): Promise<StoredSchedule[]> {
    const rows = await this.#db.rows<{ body: unknown }>(
      `SELECT body FROM ${this.schema}.schedules WHERE queue = $1 ORDER BY id`,
      [queue],
    )
    // A definition that does not read as one (written by something other than worq) is left out.
    return rows.map(r => r.body).filter(readableSchedule)
  }

  async readEvents(queue: string, after: string, options: ReadOptions): Promise<EventBatch> {
    const deadline = Date.now() + Math.max(0, options.blockMs)
    let position: number | undefined
    for (;;) {
      this.#open()
      const s = this.schema
      // Two statements: the second's snapshot sees what the first folded in.
      await this.#db.rows(`SELECT 1 FROM ${s}.settle($1)`, [queue])
      const head = await this.#db.rows<{ last: string; first: string | null }>(
        `SELECT event_seq AS last, (SELECT min(n) FROM ${s}.events WHERE queue = $1) AS first
         FROM ${s}.folds WHERE queue = $1`,
        [queue],
      )
      const last = Number(head[0]!.last)
      const first = head[0]!.first === null ? last + 1 : Number(head[0]!.first)
      if (position === undefined) {
        const from = after === 'now' ? last : Number(after)
        position = Number.isFinite(from) && from >= 0 ? from : 0
      }
      const reset = position > last
      const from = reset ? first - 1 : position
      const gap = reset || from + 1 < first
      // A row holds events n … n + count − 1 (schema version 4): the rows that hold any of the
      // page's events (from + 1 … from + options.count), from the one holding event from + 1
      // (both bounds on the primary key), expanded. Never past its count: a body longer than it
      // (written by something other than worq) would number events past the last, and every read
      // would start over.
      const rows = await this.#db.rows<{ n: string; body: Record<string, unknown> }>(
        `SELECT e.n + x.i - 1 AS n, x.body
         FROM ${s}.events e, jsonb_array_elements(e.body) WITH ORDINALITY AS x(body, i)
         WHERE e.queue = $1 AND e.n <= $2::bigint + $3
           AND e.n >= coalesce((SELECT max(n) FROM ${s}.events
             WHERE queue = $1 AND n <= $2::bigint + 1), 0)
           AND e.n + x.i - 1 > $2 AND x.i <= e.count
         ORDER BY 1 LIMIT $3`,
        [queue, from, options.count],
      )
      const events = rows.map(r => eventOf(r.n, r.body))
      const batch: EventBatch = {
        events,
        gap,
        last:
          events.length > 0
            ? events[events.length - 1]!.eventId
            : String(Math.max(from, first - 1)),
      }
      if (events.length > 0 || gap || Date.now() >= deadline || options.signal?.aborted)
        return batch
      position = from
      await pause(Math.min(50, deadline - Date.now()), options.signal)
    }
  }

  async metrics(
    queue: string,
    minutes: number,
  ): Promise<{ minutes: MinuteCounts[]; totals: MinuteCounts }> {
    this.#open()
    const s = this.schema
    await this.#db.rows(`SELECT 1 FROM ${s}.settle($1)`, [queue])
    const now = Date.now()
    const from = now - (now % 60_000) - (minutes - 1) * 60_000
    const rows = await this.#db.rows<Record<string, unknown>>(
      `SELECT * FROM ${s}.metrics WHERE queue = $1 AND (minute = 0 OR minute >= $2) ORDER BY minute`,
      [queue, from],
    )
    const all = rows.map(countsOf)
    const totals = all.find(m => m.minute === 0) ?? countsOf(ZERO)
    return { minutes: all.filter(m => m.minute !== 0), totals }
  }
}

const ZERO = {
  minute: 0,
  completed: 0,
  failed: 0,
  retried: 0,
  expired: 0,
  cancelled: 0,
  wait: new Array<number>(22).fill(0),
  run: new Array<number>(22).fill(0),
  wait_sum: 0,
  run_sum: 0,
}

/** Waits `ms`, or less when `signal` aborts. */
function pause(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise(resolve => {
    const done = () => {
      clearTimeout(timer)
      signal?.removeEventListener('abort', done)
      resolve()
    }
    const timer = setTimeout(done, Math.max(0, ms))
    signal?.addEventListener('abort', done)
  })
}
