/**
 * The worker's side of a postgres:// backend: exchanges (finish and reserve in one statement, and
 * park the worker), waits for work (wake-ups and handovers heard on the listening connection),
 * progress, and a worker leaving. docs/postgres.md ("Handover") describes the parks.
 */
import { nanoid } from 'nanoid'
import type { ExchangeResult, Finish, Park, ProgressUpdate, ReservedTask } from '../backend.js'
import { encodeFinishes } from './finishes.js'
import { Folds } from './folds.js'
import { Handovers } from './handovers.js'
import { InFlight } from './in-flight.js'
import type { Listener } from './listen.js'
import type { PgPool } from './pool.js'
import { decodeReserved, exchangeSql } from './reserved.js'
import { WorkWaits } from './waits.js'

/** What the worker's side uses of its backend. */
export interface WorkParts {
  readonly db: PgPool
  readonly schema: string
  /** The backend's channel id (`<schema>.o.<clientId>`): handovers to its workers come there. */
  readonly clientId: string
  readonly maxPayloadBytes: number
  /** The listening connection (not yet connected when the backend is made). */
  listener(): Listener
  /** Calls one of worq's functions (`SELECT <schema>.<sql> AS v`); throws once closed. */
  fn<T>(sql: string, params: unknown[]): Promise<T>
  /** Throws BrokerClosed once the backend is closed. */
  open(): void
}

/** The exchanges, waits, handovers and progress of the workers that run in this process. */
export class WorkerSide {
  /** Idle workers waiting for a wake-up (or a handover) of their queue. */
  readonly waits = new WorkWaits()
  readonly #handovers = new Handovers()
  /** Progress calls under way per queue (a finish waits for all of them). */
  readonly #progressing = new InFlight()
  /** Folds of the inbox that exchanges asked for, run apart from them. */
  readonly #folds: Folds
  readonly #parts: WorkParts

  constructor(parts: WorkParts) {
    this.#parts = parts
    this.#folds = new Folds(async queue => parts.fn(`fold($1, true)`, [queue]))
  }

  async exchange(
    queue: string,
    workerId: string,
    done: readonly Finish[],
    max: number,
    park?: Park,
  ): Promise<ExchangeResult> {
    const { db, schema } = this.#parts
    this.waits.seen(queue, workerId)
    // Progress sent before a finish is stored before it (Redis orders them on one connection).
    await this.#progressing.settled(queue)
    const finishes = encodeFinishes(queue, done, this.#parts.maxPayloadBytes)
    this.#parts.open()
    // Parked only while this process listens: the park names its listening connection. An
    // exchange without a park ends the worker's park (park ms 0).
    const pid = park && park.ms > 0 ? this.#parts.listener().pid : undefined
    // Known before the statement: a handover may be heard before its reply.
    if (pid !== undefined) this.#handovers.parked(queue, workerId)
    const args = [queue, workerId, JSON.stringify(finishes), max]
    args.push(
      ...(pid !== undefined
        ? [Math.round(park!.ms), Math.floor(park!.slots), this.#parts.clientId, pid]
        : [0, 0, '', 0]),
    )
    // The call's id: sent again after a dropped connection, the exchange finds what its first try
    // did, if that try committed (docs/postgres.md, "A server that is away").
    const call = nanoid(12)
    const r = await db.resendable<{
      stale: string[]
      reserved: unknown[]
      nextDueIn: number | null
      fold: boolean
    }>(exchangeSql(schema), resent => [...args, call, resent ? 'on' : 'off'])
    if (r.fold) this.#folds.request(queue)
    this.#handovers.finished(queue, workerId, done)
    const reserved = r.reserved.map(decodeReserved)
    // Handed over since the worker last looked: it takes them beyond `max`, as on Redis.
    reserved.push(...this.#handovers.take(queue, workerId))
    const result: ExchangeResult = { stale: r.stale, reserved }
    if (r.nextDueIn !== null) result.nextDueIn = r.nextDueIn
    return result
  }

  async waitForWork(
    queue: string,
    workerId: string,
    timeoutMs: number,
    signal?: AbortSignal,
  ): Promise<ReservedTask[]> {
    await this.#parts
      .listener()
      .ready()
      .catch(() => undefined)
    if (!this.#handovers.has(queue, workerId))
      await this.waits.wait(queue, workerId, timeoutMs, signal)
    return this.#handovers.take(queue, workerId)
  }

  /**
   * Tasks an enqueue handed to a parked worker of this process: kept for its next look, and its
   * wait ended. `rows` null: too big for the notification, or a notification lost with the
   * connection: read here.
   */
  async handed(queue: string, worker: string, rows: unknown[] | null): Promise<void> {
    const got =
      rows ?? (await this.#parts.fn<unknown[]>(`handed($1, $2)`, [queue, worker]).catch(() => []))
    if (this.#handovers.put(queue, worker, got.map(decodeReserved)))
      this.waits.wakeWorker(queue, worker)
  }

  /** Task `id` of `queue` was cancelled: a handover of it not yet taken is dropped. */
  cancelled(queue: string, id: string): void {
    this.#handovers.drop(queue, id)
  }

  /** The listening connection is back: handovers notified meanwhile are read again. */
  async gap(): Promise<void> {
    await Promise.all(this.#handovers.workers().map(([q, w]) => this.handed(q, w, null)))
  }

  async progress(queue: string, updates: readonly ProgressUpdate[]): Promise<void> {
    if (updates.length === 0) return
    const sent = this.#parts.fn<void>(`progress($1, $2::jsonb)`, [queue, JSON.stringify(updates)])
    await this.#progressing.add(queue, sent)
  }

  /** A worker leaving: its park goes, and what it was handed and never took goes back, uncounted. */
  async unpark(queue: string, workerId: string): Promise<void> {
    await this.#parts.fn(`unpark($1, $2, $3::text[])`, [
      queue,
      workerId,
      this.#handovers.held(queue, workerId),
    ])
    this.#handovers.forget(queue, workerId)
  }

  /** Wakes every waiter and lets the folds under way end (the backend closing). */
  async close(): Promise<void> {
    this.waits.close()
    await this.#folds.settled()
  }
}
