/**
 * postgres:// — the PostgreSQL backend. Every operation that changes a queue is one call of a
 * plpgsql function (schema/*.sql, installed by migrate.ts): one round trip, atomic, with the
 * semantics of memory:// and the Redis scripts. A pool of connections serves the calls; one LISTEN
 * connection per backend hears wake-ups, control messages and this instance's outcomes. An enqueue
 * may join the caller's own transaction (`tx`). docs/postgres.md describes the tables and flows.
 */
import { nanoid } from 'nanoid'
import {
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
  type Park,
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
import { BrokerClosed, ListingOff } from '../../errors.js'
import { redactUrl } from '../../redact-url.js'
import { BatchEnqueue } from './enqueue.js'
import { Listener } from './listen.js'
import { migrate } from './migrate.js'
import { PgPool, timedOut, type Queryable } from './pool.js'
import { infoOfRow, listSql, stateOfRow, type TaskRow } from './reads.js'
import { QueueStore } from './queue-store.js'
import { OutcomeListeners } from './outcomes.js'
import { parsePostgresUrl } from './url.js'
import { WorkerSide } from './work.js'
import { PURGE_STEP, purgeInSteps } from '../purge-steps.js'

/** Options of a postgres:// backend. */
export interface PostgresBackendOptions {
  maxPayloadBytes: number
  /** ms to wait for a connection before failing with BackendUnreachable. @default 5_000 */
  connectTimeoutMs?: number
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
  readonly #store: QueueStore
  readonly #batches: BatchEnqueue
  readonly #work: WorkerSide
  readonly #control = new Map<string, Set<(m: ControlMessage) => void>>()
  readonly #outcomes: OutcomeListeners
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
    this.#db = new PgPool(
      this.url,
      { ...config, max: parsed.pool },
      client => migrate(client, this.schema),
      parsed.prepare,
    )
    this.#store = new QueueStore(this.#db, this.schema, () => this.#open())
    this.#batches = new BatchEnqueue(this.#db, this.schema)
    this.#outcomes = new OutcomeListeners(this.#db, this.schema, this.clientId, (queue, id) =>
      this.#row(queue, id),
    )
    this.#work = new WorkerSide({
      db: this.#db,
      schema: this.schema,
      clientId: this.clientId,
      maxPayloadBytes: this.limits.maxPayloadBytes,
      listener: () => this.#listener,
      fn: (sql, params) => this.#fn(sql, params),
      open: () => this.#open(),
    })
    this.#listener = new Listener(this.url, config, this.schema, this.clientId, {
      work: queue => this.#work.waits.wake(queue),
      control: (queue, m) => {
        const message = m as ControlMessage
        // A task cancelled while handed over and not yet taken is not passed on.
        if (message.type === 'cancel') this.#work.cancelled(queue, message.id)
        this.#tell(queue, message)
      },
      outcome: (queue, id, what) => void this.#outcomes.deliver(queue, id, what),
      handover: (queue, worker, rows) => void this.#work.handed(queue, worker, rows),
      gap: lostMs => void this.#gap(lostMs),
    })
  }

  #open(): void {
    if (this.#closed) throw new BrokerClosed('postgres:// backend')
  }

  /**
   * Calls one of worq's functions: `sql` is its call, of fixed text (a prepared statement). On a
   * closed backend it rejects, never throws: a caller that handles its failure with `.catch` (the
   * read-back of a handover heard while the backend closes) would otherwise let BrokerClosed
   * escape, unhandled.
   */
  #fn<T>(sql: string, params: unknown[]): Promise<T> {
    if (this.#closed) return Promise.reject(new BrokerClosed('postgres:// backend'))
    return this.#db.value<T>(`SELECT ${this.schema}.${sql} AS v`, params, true)
  }

  /** Runs a migration now (the first operation would). */
  async migrate(): Promise<void> {
    await this.#db.ready()
  }

  async enqueue(queue: string, tasks: readonly NewTask[]): Promise<Array<'ok' | 'duplicate'>> {
    this.#open()
    return this.#batches.enqueue(queue, tasks, this.#origin())
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
    const sql = `SELECT ${this.schema}.enqueue($1, $2::jsonb, $3, $4) AS v`
    const args = [queue, JSON.stringify(tasks), this.#origin(), nanoid()]
    const { rows } = await tx.query(sql, args).catch((err: unknown) => {
      throw timedOut(err, 'enqueue') ?? err
    })
    const v = (rows[0] as { v: unknown }).v
    return (typeof v === 'string' ? v.replace(/^\{|\}$/g, '').split(',') : v) as Array<
      'ok' | 'duplicate'
    >
  }

  #origin(): string | null {
    return this.#listening ? this.clientId : null
  }

  exchange(
    queue: string,
    workerId: string,
    done: readonly Finish[],
    max: number,
    park?: Park,
  ): Promise<ExchangeResult> {
    return this.#work.exchange(queue, workerId, done, max, park)
  }

  async waitForWork(
    queue: string,
    workerId: string,
    timeoutMs: number,
    signal?: AbortSignal,
  ): Promise<ReservedTask[]> {
    if (this.#closed || signal?.aborted) return []
    return this.#work.waitForWork(queue, workerId, timeoutMs, signal)
  }

  async renew(queue: string, leases: readonly Lease[]): Promise<string[]> {
    if (leases.length === 0) return []
    return this.#fn(`renew($1, $2::jsonb)`, [queue, JSON.stringify(leases)])
  }

  progress(queue: string, updates: readonly ProgressUpdate[]): Promise<void> {
    return this.#work.progress(queue, updates)
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

  /** In steps (purge-steps.ts, `purge_step` of schema versions 12 and 13), each a transaction. */
  async purge(queue: string): Promise<number> {
    return purgeInSteps(async first => {
      const [cancelled, taken, waiting] = await this.#fn<number[]>(`purge_step($1, $2, $3)`, [
        queue,
        PURGE_STEP,
        first,
      ])
      return { cancelled: cancelled!, taken: taken!, waiting: waiting! }
    })
  }

  async listen(listener: OutcomeListener, onGap: () => void): Promise<void> {
    this.#outcomes.add(listener, onGap)
    await this.#listener.ready()
    this.#listening = true
  }

  /** The LISTEN connection is back after `lostMs`: listeners, pools and waits catch up. */
  async #gap(lostMs: number): Promise<void> {
    await this.#outcomes.gap(lostMs)
    for (const queue of this.#control.keys()) this.#tell(queue, { type: 'resync' })
    // Handovers notified while the connection was down were lost with it: read them again.
    await this.#work.gap()
    this.#work.waits.wakeAll()
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

  async pause(queue: string, paused: boolean): Promise<boolean> {
    return this.#fn(`pause($1, $2)`, [queue, paused])
  }

  async setLimit(queue: string, name: string, limit: Limit | null): Promise<boolean> {
    return this.#fn(`set_limit($1, $2, $3::jsonb)`, [
      queue,
      name,
      limit === null ? null : JSON.stringify(limit),
    ])
  }

  async fireSchedule(
    queue: string,
    id: string,
    gen: string | undefined,
    due: number,
    next: number | null,
    task: NewTask | null,
  ): Promise<boolean> {
    return this.#fn(`fire_schedule($1, $2, $3, $4, $5, $6::jsonb, $7)`, [
      queue,
      id,
      gen ?? null,
      due,
      next,
      task === null ? null : JSON.stringify(task),
      this.#origin(),
    ])
  }

  async registerWorker(queue: string, info: WorkerInfo, ttlMs: number): Promise<void> {
    return this.#store.registerWorker(queue, info, ttlMs)
  }

  async unregisterWorker(queue: string, id: string): Promise<void> {
    await this.#work.unpark(queue, id)
    return this.#store.unregisterWorker(queue, id)
  }

  async inspect(queue: string): Promise<QueueInfo> {
    return this.#store.inspect(queue)
  }

  async settings(queue: string): Promise<QueueSettings> {
    return this.#store.settings(queue)
  }

  async configure(
    queue: string,
    patch: Partial<Omit<QueueSettings, 'paused'>>,
  ): Promise<QueueSettings> {
    return this.#store.configure(queue, patch)
  }

  async cacheDelete(queue: string, key: string): Promise<boolean> {
    return this.#store.cacheDelete(queue, key)
  }

  async cacheClear(queue: string): Promise<number> {
    return this.#store.cacheClear(queue)
  }

  async cacheSize(queue: string): Promise<number> {
    return this.#store.cacheSize(queue)
  }

  async listLimits(queue: string): Promise<Record<string, Limit>> {
    return this.#store.listLimits(queue)
  }

  async putSchedule(queue: string, schedule: StoredSchedule): Promise<void> {
    return this.#store.putSchedule(queue, schedule)
  }

  async removeSchedule(queue: string, id: string): Promise<boolean> {
    return this.#store.removeSchedule(queue, id)
  }

  async schedules(queue: string): Promise<StoredSchedule[]> {
    return this.#store.schedules(queue)
  }

  async readEvents(queue: string, after: string, options: ReadOptions): Promise<EventBatch> {
    return this.#store.readEvents(queue, after, options)
  }

  async metrics(
    queue: string,
    minutes: number,
  ): Promise<{ minutes: MinuteCounts[]; totals: MinuteCounts }> {
    return this.#store.metrics(queue, minutes)
  }

  async checks(): Promise<string[]> {
    return []
  }

  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    await this.#work.close()
    await Promise.all([this.#listener.close(), this.#db.close()])
  }
}
