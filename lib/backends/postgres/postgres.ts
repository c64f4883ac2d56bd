/**
 * postgres:// — the PostgreSQL backend. Every operation that changes a queue is one call of a
 * plpgsql function (schema/*.sql, installed by migrate.ts): one round trip, atomic, with the
 * semantics of memory:// and the Redis scripts. A pool of connections serves the calls; one LISTEN
 * connection per backend hears wake-ups, control messages and this instance's outcomes. An enqueue
 * may join the caller's own transaction (`tx`). docs/postgres.md describes the tables and flows.
 */
import { nanoid } from 'nanoid'
import {
  DEFAULT_SETTINGS,
  type Backend,
  type BackendLimits,
  type ControlMessage,
  type EventBatch,
  type ExchangeResult,
  type Finish,
  type Lease,
  type Limit,
  type ListQuery,
  type MinuteCounts,
  type NewTask,
  type OutcomeListener,
  type ProgressUpdate,
  type QueueInfo,
  type QueueSettings,
  type ReadOptions,
  type ReservedTask,
  type StoredInfo,
  type StoredSchedule,
  type TaskState,
  type WorkerInfo,
} from '../backend.js'
import { boundedOutcome, outcomeError } from '../../outcome.js'
import { BrokerClosed, ListingOff } from '../../errors.js'
import { redactUrl } from '../redis/url.js'
import { Listener } from './listen.js'
import { migrate } from './migrate.js'
import { PgPool, type Queryable } from './pool.js'
import { countsOf, eventOf, infoOfRow, listSql, stateOfRow, type TaskRow } from './reads.js'
import { parsePostgresUrl } from './url.js'
import { WorkWaits } from './waits.js'

/** Options of a postgres:// backend. */
export interface PostgresBackendOptions {
  maxPayloadBytes: number
  /** ms to wait for a connection before failing with BackendUnreachable. @default 5_000 */
  connectTimeoutMs?: number
}

const SETTING_COLUMNS: Record<keyof Omit<QueueSettings, 'paused'>, string> = {
  events: 'events',
  eventsMax: 'events_max',
  metrics: 'metrics',
  listing: 'listing',
  cacheSize: 'cache_size',
  cacheTtl: 'cache_ttl',
}

/** The PostgreSQL backend. */
export class PostgresBackend implements Backend {
  readonly url: string
  readonly limits: BackendLimits
  /** This instance's id: outcomes of tasks enqueued here are notified on its channel. */
  readonly clientId = nanoid(12).replace(/-/g, '_')
  readonly schema: string
  readonly #db: PgPool
  readonly #listener: Listener
  readonly #waits = new WorkWaits()
  readonly #control = new Map<string, Set<(m: ControlMessage) => void>>()
  readonly #outcomes: Array<{ listener: OutcomeListener; onGap: () => void }> = []
  /** Name and attempt of tasks reserved here, by token (to describe an oversize result). */
  readonly #reserved = new Map<string, { name: string; attempt: number }>()
  /** The latest progress call per queue under way (a finish waits for it). */
  readonly #progressing = new Map<string, Promise<void>>()
  #listening = false
  #closed = false

  constructor(raw: string, options: PostgresBackendOptions) {
    this.url = redactUrl(raw)
    this.limits = { maxPayloadBytes: options.maxPayloadBytes }
    const parsed = parsePostgresUrl(raw)
    this.schema = parsed.schema
    const config = {
      ...parsed.connection,
      connectionTimeoutMillis: options.connectTimeoutMs ?? 5_000,
    }
    this.#db = new PgPool(this.url, { ...config, max: parsed.pool }, client =>
      migrate(client, this.schema),
    )
    this.#listener = new Listener(this.url, config, this.schema, this.clientId, {
      work: queue => this.#waits.wake(queue),
      control: (queue, m) => this.#tell(queue, m as ControlMessage),
      outcome: (queue, id, what) => void this.#deliver(queue, id, what),
      gap: () => this.#gap(),
    })
  }

  #open(): void {
    if (this.#closed) throw new BrokerClosed('postgres:// backend')
  }

  #fn<T>(sql: string, params: unknown[]): Promise<T> {
    this.#open()
    return this.#db.value<T>(`SELECT ${this.schema}.${sql} AS v`, params)
  }

  /** Runs a migration now (the first operation would). */
  async migrate(): Promise<void> {
    await this.#db.ready()
  }

  async enqueue(queue: string, tasks: readonly NewTask[]): Promise<Array<'ok' | 'duplicate'>> {
    return this.#fn(`enqueue($1, $2::jsonb, $3)`, [queue, JSON.stringify(tasks), this.#origin()])
  }

  /**
   * Enqueues in the caller's transaction on `tx` (a node-postgres client in a transaction): the
   * tasks exist if and only if it commits, and no worker sees them before.
   */
  async enqueueIn(
    tx: Queryable,
    queue: string,
    tasks: readonly NewTask[],
  ): Promise<Array<'ok' | 'duplicate'>> {
    this.#open()
    await this.#db.ready()
    const { rows } = await tx.query(`SELECT ${this.schema}.enqueue($1, $2::jsonb, $3) AS v`, [
      queue,
      JSON.stringify(tasks),
      this.#origin(),
    ])
    const v = (rows[0] as { v: unknown }).v
    return (typeof v === 'string' ? v.replace(/^\{|\}$/g, '').split(',') : v) as Array<
      'ok' | 'duplicate'
    >
  }

  #origin(): string | null {
    return this.#listening ? this.clientId : null
  }

  async exchange(
    queue: string,
    workerId: string,
    done: readonly Finish[],
    max: number,
  ): Promise<ExchangeResult> {
    this.#waits.seen(queue, workerId)
    // Progress sent before a finish is stored before it (Redis orders them on one connection).
    await this.#progressing.get(queue)
    const finishes = done.map(f => {
      const known = this.#reserved.get(f.token)
      this.#reserved.delete(f.token)
      if (f.release) return { id: f.id, token: f.token, release: true }
      const times = { runMs: f.runMs, waitMs: f.waitMs }
      if (f.retryAt !== undefined) {
        const { stack: _stack, ...error } = outcomeError(f.outcome)
        return { id: f.id, token: f.token, retryAt: f.retryAt, error, ...times }
      }
      const outcome = boundedOutcome(f.outcome, this.limits.maxPayloadBytes, () => ({
        taskName: known?.name ?? 'unknown',
        queue,
        taskId: f.id,
        attempts: known?.attempt,
      }))
      return { id: f.id, token: f.token, outcome, ...times }
    })
    const r = await this.#fn<{
      stale: string[]
      reserved: Array<ReservedTask & { cache: ReservedTask['cache'] | null }>
      nextDueIn?: number
    }>(`exchange($1, $2, $3::jsonb, $4)`, [queue, workerId, JSON.stringify(finishes), max])
    const reserved = r.reserved.map(t => {
      this.#reserved.set(t.token, { name: t.name, attempt: t.attempt })
      return { ...t, cache: t.cache ?? undefined, slots: t.slots ?? [] }
    })
    const result: ExchangeResult = { stale: r.stale, reserved }
    if (r.nextDueIn !== undefined) result.nextDueIn = r.nextDueIn
    return result
  }

  async waitForWork(
    queue: string,
    workerId: string,
    timeoutMs: number,
    signal?: AbortSignal,
  ): Promise<ReservedTask[]> {
    if (this.#closed || signal?.aborted) return []
    await this.#listener.ready().catch(() => undefined)
    await this.#waits.wait(queue, workerId, timeoutMs, signal)
    return []
  }

  async renew(queue: string, leases: readonly Lease[]): Promise<string[]> {
    if (leases.length === 0) return []
    return this.#fn(`renew($1, $2::jsonb)`, [queue, JSON.stringify(leases)])
  }

  async progress(queue: string, updates: readonly ProgressUpdate[]): Promise<void> {
    if (updates.length === 0) return
    const sent = this.#fn<void>(`progress($1, $2::jsonb)`, [queue, JSON.stringify(updates)])
    const mine = sent.then(
      () => undefined,
      () => undefined,
    )
    this.#progressing.set(queue, mine)
    void mine.then(() => {
      if (this.#progressing.get(queue) === mine) this.#progressing.delete(queue)
    })
    await sent
  }

  async sweep(queue: string, intervalMs: number): Promise<number> {
    return this.#fn(`sweep($1, $2)`, [queue, intervalMs])
  }

  async #row(queue: string, id: string): Promise<TaskRow | undefined> {
    this.#open()
    const rows = await this.#db.rows<TaskRow>(
      `SELECT * FROM ${this.schema}.tasks WHERE queue = $1 AND id = $2 AND NOT (state = 'done' AND expires_at <= ${this.schema}.now_ms())`,
      [queue, id],
    )
    return rows[0]
  }

  async status(queue: string, id: string): Promise<TaskState | null> {
    const row = await this.#row(queue, id)
    return row ? stateOfRow(row) : null
  }

  async info(queue: string, id: string): Promise<StoredInfo | null> {
    const row = await this.#row(queue, id)
    return row ? infoOfRow(row) : null
  }

  async list(queue: string, query: ListQuery): Promise<StoredInfo[]> {
    if (!(await this.settings(queue)).listing) throw new ListingOff(queue)
    const [sql, params] = listSql(this.schema, queue, query)
    return (await this.#db.rows<TaskRow>(sql, params)).map(infoOfRow)
  }

  async cancel(queue: string, id: string): Promise<boolean> {
    const cancelled = await this.#fn<boolean>(`cancel($1, $2)`, [queue, id])
    // A pool of this process holding the task (running or prefetched) hears of the cancel before
    // the call answers, as it would on memory://.
    if (cancelled && this.#control.has(queue)) await this.#listener.sync()
    return cancelled
  }

  async size(queue: string): Promise<number> {
    return Number(
      await this.#db.value(
        `SELECT count(*) AS v FROM ${this.schema}.tasks WHERE queue = $1 AND state IN ('pending', 'enqueued', 'delayed', 'held')`,
        [queue],
      ),
    )
  }

  async purge(queue: string): Promise<number> {
    return this.#fn(`purge($1)`, [queue])
  }

  async listen(listener: OutcomeListener, onGap: () => void): Promise<void> {
    this.#outcomes.push({ listener, onGap })
    await this.#listener.ready()
    this.#listening = true
  }

  /** An outcome notified for this instance: inline, or only its kind when too big to notify. */
  async #deliver(queue: string, id: string, what: string): Promise<void> {
    let outcome = what
    if (what.length === 1) {
      const row = await this.#row(queue, id).catch(() => undefined)
      if (!row) return
      if (what === 'p') {
        if (row.progress === null) return
        outcome = 'p' + row.progress
      } else {
        if (row.outcome === null) return
        outcome = (what === 'C' ? 'C' : row.outcome.charAt(0)) + row.outcome.slice(1)
      }
    }
    for (const o of this.#outcomes) o.listener(queue, id, outcome)
  }

  #gap(): void {
    for (const o of this.#outcomes) o.onGap()
    for (const queue of this.#control.keys()) this.#tell(queue, { type: 'resync' })
    this.#waits.wakeAll()
  }

  #tell(queue: string, m: ControlMessage): void {
    for (const l of [...(this.#control.get(queue) ?? [])]) l(m)
  }

  async control(queue: string, listener: (message: ControlMessage) => void): Promise<() => void> {
    await this.#listener.ready()
    let set = this.#control.get(queue)
    if (!set) this.#control.set(queue, (set = new Set()))
    set.add(listener)
    return () => {
      set.delete(listener)
      if (set.size === 0 && this.#control.get(queue) === set) this.#control.delete(queue)
    }
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
    const cols: string[] = []
    const params: unknown[] = [queue]
    for (const [k, col] of Object.entries(SETTING_COLUMNS)) {
      const v = patch[k as keyof typeof SETTING_COLUMNS]
      if (v === undefined) continue
      params.push(v)
      cols.push(`${col} = $${params.length}`)
    }
    await this.#db.rows(`INSERT INTO ${s}.queues (name) VALUES ($1) ON CONFLICT DO NOTHING`, [
      queue,
    ])
    if (cols.length > 0)
      await this.#db.rows(`UPDATE ${s}.queues SET ${cols.join(', ')} WHERE name = $1`, params)
    if (patch.cacheSize !== undefined)
      await this.#db.rows(`SELECT ${s}.trim_cache($1, ${s}.now_ms())`, [queue])
    return this.settings(queue)
  }

  async pause(queue: string, paused: boolean): Promise<boolean> {
    return this.#fn(`pause($1, $2)`, [queue, paused])
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

  async setLimit(queue: string, name: string, limit: Limit | null): Promise<boolean> {
    return this.#fn(`set_limit($1, $2, $3::jsonb)`, [
      queue,
      name,
      limit === null ? null : JSON.stringify(limit),
    ])
  }

  async listLimits(queue: string): Promise<Record<string, Limit>> {
    const rows = await this.#db.rows<{ name: string; spec: Limit }>(
      `SELECT name, spec FROM ${this.schema}.limits WHERE queue = $1 ORDER BY name`,
      [queue],
    )
    return Object.fromEntries(rows.map(r => [r.name, r.spec]))
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
    const rows = await this.#db.rows<{ body: StoredSchedule }>(
      `SELECT body FROM ${this.schema}.schedules WHERE queue = $1 ORDER BY id`,
      [queue],
    )
    return rows.map(r => r.body)
  }

  async fireSchedule(
    queue: string,
    id: string,
    due: number,
    next: number | null,
    task: NewTask | null,
  ): Promise<boolean> {
    return this.#fn(`fire_schedule($1, $2, $3, $4, $5::jsonb, $6)`, [
      queue,
      id,
      due,
      next,
      task === null ? null : JSON.stringify(task),
      this.#origin(),
    ])
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
         FROM ${s}.queues WHERE name = $1`,
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
      const rows = await this.#db.rows<{ n: string; body: Record<string, unknown> }>(
        `SELECT n, body FROM ${s}.events WHERE queue = $1 AND n > $2 ORDER BY n LIMIT $3`,
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

  async checks(): Promise<string[]> {
    return []
  }

  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    this.#waits.wakeAll()
    await Promise.all([this.#listener.close(), this.#db.close()])
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
