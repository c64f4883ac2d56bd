/**
 * memory:// — the embedded backend: every queue lives in this process, with the same semantics as
 * Redis (leases, sweeps, attempts, delays, priorities, Deferred arguments, the result cache,
 * limits, pause, schedules, events, metrics, result expiry). Brokers with the same memory:// URL
 * share one instance; when the last one closes, its tasks are gone. The task flows are in
 * engine.ts, the reports in reads.ts.
 */
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
import { leaseMs, limitRecord } from '../backend.js'
import { outcomeStatus } from '../../outcome.js'
import { BrokerClosed, ListingOff } from '../../errors.js'
import { MemoryEngine } from './engine.js'
import { emit, zeroCounts } from './observe.js'
import { cancelledNow, infoOf, inspect, list, statusOf, waitingIds } from './reads.js'
import { trimCache } from './shaping.js'
import { PURGE_STEP, purgeInSteps } from '../purge-steps.js'

const CLEANUP_MS = 1000

/** The embedded backend. */
export class MemoryBackend implements Backend {
  readonly url: string
  readonly limits: BackendLimits
  readonly #engine: MemoryEngine
  #cleanup: NodeJS.Timeout
  #closed = false

  constructor(url: string, limits: BackendLimits) {
    this.url = url
    this.limits = limits
    this.#engine = new MemoryEngine(limits)
    this.#cleanup = setInterval(() => this.#expireOutcomes(), CLEANUP_MS).unref()
  }

  #open(): void {
    if (this.#closed) throw new BrokerClosed('memory:// backend')
  }

  async enqueue(queue: string, tasks: readonly NewTask[]): Promise<Array<'ok' | 'duplicate'>> {
    this.#open()
    const now = Date.now()
    return tasks.map(t => this.#engine.enqueue(queue, t, now))
  }

  async exchange(
    queue: string,
    workerId: string,
    done: readonly Finish[],
    max: number,
  ): Promise<ExchangeResult> {
    this.#open()
    const q = this.#engine.q(queue)
    const now = Date.now()
    const stale = this.#engine.applyFinishes(q, done, now)
    q.promote(now)
    const reserved = this.#engine.reserve(q, workerId, max, now)
    const result: ExchangeResult = { stale, reserved }
    if (reserved.length < max && q.delayed.size > 0) {
      let due = Infinity
      for (const id of q.delayed) due = Math.min(due, q.records.get(id)!.dueAt ?? 0)
      result.nextDueIn = Math.max(0, due - now)
    }
    return result
  }

  /** In-process work needs no handover: this backend never parks a worker and hands over none. */
  waitForWork(
    queue: string,
    _workerId: string,
    timeoutMs: number,
    signal?: AbortSignal,
  ): Promise<ReservedTask[]> {
    const q = this.#engine.q(queue)
    if ((q.wait.size > 0 && !q.settings.paused) || this.#closed || signal?.aborted)
      return Promise.resolve([])
    return new Promise(resolve => {
      const done = () => {
        clearTimeout(timer)
        signal?.removeEventListener('abort', done)
        q.wakers.delete(done)
        resolve([])
      }
      const timer = setTimeout(done, timeoutMs)
      signal?.addEventListener('abort', done)
      q.wakers.add(done)
    })
  }

  async renew(queue: string, leases: readonly Lease[]): Promise<string[]> {
    this.#open()
    const q = this.#engine.q(queue)
    const now = Date.now()
    const lost: string[] = []
    for (const l of leases) {
      const rec = q.records.get(l.id)
      if (rec?.state === 'processing' && rec.token === l.token)
        rec.leaseUntil = now + leaseMs(l.heartrate)
      else lost.push(l.id)
    }
    return lost
  }

  async progress(queue: string, updates: readonly ProgressUpdate[]): Promise<void> {
    this.#open()
    this.#engine.progress(queue, updates, Date.now())
  }

  async sweep(queue: string, intervalMs: number): Promise<number> {
    this.#open()
    return this.#engine.sweep(queue, intervalMs, Date.now())
  }

  async status(queue: string, id: string): Promise<TaskState | null> {
    this.#open()
    const rec = this.#engine.get(queue, id)
    if (!rec) return null
    if (rec.state !== 'done') return { status: statusOf(rec) }
    const state: TaskState = { status: outcomeStatus(rec.outcome!), outcome: rec.outcome! }
    if (rec.cached) state.cached = true
    return state
  }

  async info(queue: string, id: string): Promise<StoredInfo | null> {
    this.#open()
    const rec = this.#engine.get(queue, id)
    return rec ? infoOf(rec) : null
  }

  async list(queue: string, query: ListQuery): Promise<StoredInfo[]> {
    this.#open()
    const q = this.#engine.q(queue)
    if (!q.settings.listing) throw new ListingOff(queue)
    return list(q, query, Date.now())
  }

  async cancel(queue: string, id: string): Promise<boolean> {
    this.#open()
    return this.#engine.cancel(queue, id, Date.now())
  }

  async size(queue: string): Promise<number> {
    this.#open()
    const i = inspect(this.#engine.queues.get(queue), Date.now())
    return i.waiting + i.delayed + i.pending
  }

  async purge(queue: string): Promise<number> {
    this.#open()
    const q = this.#engine.queues.get(queue)
    if (!q) return 0
    // In steps, as on the servers: other work of this process runs between them.
    return purgeInSteps(async first => {
      if (!first) await new Promise(resolve => setImmediate(resolve))
      const waiting = first ? await this.size(queue) : undefined
      const ids = waitingIds(q, PURGE_STEP)
      // Pending tasks taken: a chain of them ends together (cancelling one cascades to the
      // others), so each is counted once this step has it cancelled, whichever went first.
      const pending = new Set(ids.filter(id => q.pending.has(id)))
      const now = Date.now()
      let cancelled = 0
      for (const id of ids)
        if (this.#engine.cancel(queue, id, now) || (pending.has(id) && cancelledNow(q, id)))
          cancelled++
      return { cancelled, taken: ids.length, ...(waiting !== undefined && { waiting }) }
    })
  }

  async listen(listener: OutcomeListener): Promise<void> {
    this.#open()
    if (!this.#engine.listeners.includes(listener)) this.#engine.listeners.push(listener)
  }

  async control(queue: string, listener: (message: ControlMessage) => void): Promise<() => void> {
    this.#open()
    const q = this.#engine.q(queue)
    q.control.add(listener)
    return () => q.control.delete(listener)
  }

  async checks(): Promise<string[]> {
    this.#open()
    return []
  }

  async registerWorker(queue: string, info: WorkerInfo, ttlMs: number): Promise<void> {
    this.#open()
    const now = Date.now()
    this.#engine
      .q(queue)
      .workers.set(info.id, { info: { ...info, seenAt: now }, until: now + ttlMs })
  }

  async unregisterWorker(queue: string, id: string): Promise<void> {
    this.#open()
    const q = this.#engine.queues.get(queue)
    if (!q) return
    q.workers.delete(id)
    if (q.processing.size + q.wait.size + q.delayed.size === 0) q.sweptAt = undefined
  }

  async inspect(queue: string): Promise<QueueInfo> {
    this.#open()
    return inspect(this.#engine.queues.get(queue), Date.now())
  }

  async settings(queue: string): Promise<QueueSettings> {
    this.#open()
    return { ...(this.#engine.queues.get(queue)?.settings ?? DEFAULT_SETTINGS) }
  }

  async configure(
    queue: string,
    patch: Partial<Omit<QueueSettings, 'paused'>>,
  ): Promise<QueueSettings> {
    this.#open()
    const q = this.#engine.q(queue)
    q.settings = { ...q.settings, ...patch, paused: q.settings.paused }
    if (patch.cacheSize !== undefined) trimCache(q, Date.now())
    return { ...q.settings }
  }

  async pause(queue: string, paused: boolean): Promise<boolean> {
    this.#open()
    const q = this.#engine.q(queue)
    if (q.settings.paused === paused) return false
    q.settings = { ...q.settings, paused }
    emit(q, paused ? 'paused' : 'resumed', undefined, Date.now())
    q.tell({ type: paused ? 'paused' : 'resumed' })
    if (!paused) q.wake()
    return true
  }

  async cacheDelete(queue: string, key: string): Promise<boolean> {
    this.#open()
    return this.#engine.queues.get(queue)?.cache.delete(key) ?? false
  }

  async cacheClear(queue: string): Promise<number> {
    this.#open()
    const q = this.#engine.queues.get(queue)
    if (!q) return 0
    trimCache(q, Date.now())
    const n = q.cache.size
    q.cache.clear()
    return n
  }

  async cacheSize(queue: string): Promise<number> {
    this.#open()
    const q = this.#engine.queues.get(queue)
    if (!q) return 0
    trimCache(q, Date.now())
    return q.cache.size
  }

  async setLimit(queue: string, name: string, limit: Limit | null): Promise<boolean> {
    this.#open()
    const q = this.#engine.q(queue)
    const had = q.limits.get(name)
    if (limit === null) {
      if (!had) return false
      q.limits.delete(name)
      q.holders.delete(name)
      q.starts.delete(name)
      // Tasks that waited for this limit go back to the front of their line.
      const waiting = q.held.get(name)
      q.held.delete(name)
      for (const id of [...(waiting ?? [])].reverse()) {
        const rec = q.records.get(id)
        if (!rec || rec.state !== 'held') continue
        rec.state = 'enqueued'
        rec.heldBy = undefined
        q.wait.unshift(id, rec.task.priority)
      }
      q.wake()
      return true
    }
    q.limits.set(name, { ...limit })
    q.wake() // a raised limit may let tasks start
    return JSON.stringify(had) !== JSON.stringify(limit)
  }

  async listLimits(queue: string): Promise<Record<string, Limit>> {
    this.#open()
    return limitRecord(this.#engine.queues.get(queue)?.limits ?? [])
  }

  async putSchedule(queue: string, schedule: StoredSchedule): Promise<void> {
    this.#open()
    const q = this.#engine.q(queue)
    q.schedules.set(schedule.id, structuredClone(schedule))
    q.tell({ type: 'schedules' })
  }

  async removeSchedule(queue: string, id: string): Promise<boolean> {
    this.#open()
    const q = this.#engine.queues.get(queue)
    if (!q?.schedules.delete(id)) return false
    q.tell({ type: 'schedules' })
    return true
  }

  async schedules(queue: string): Promise<StoredSchedule[]> {
    this.#open()
    return [...(this.#engine.queues.get(queue)?.schedules.values() ?? [])].map(s =>
      structuredClone(s),
    )
  }

  async fireSchedule(
    queue: string,
    id: string,
    gen: string | undefined,
    due: number,
    next: number | null,
    task: NewTask | null,
  ): Promise<boolean> {
    this.#open()
    const s = this.#engine.queues.get(queue)?.schedules.get(id)
    if (!s || s.next !== due || s.gen !== gen) return false
    s.next = next
    if (task === null) return true
    s.last = due
    s.runs++
    this.#engine.enqueue(queue, task, Date.now())
    return true
  }

  async readEvents(queue: string, after: string, options: ReadOptions): Promise<EventBatch> {
    this.#open()
    return this.#engine.q(queue).events.read(after, options)
  }

  async metrics(
    queue: string,
    minutes: number,
  ): Promise<{ minutes: MinuteCounts[]; totals: MinuteCounts }> {
    this.#open()
    const q = this.#engine.queues.get(queue)
    if (!q) return { minutes: [], totals: zeroCounts(0) }
    const now = Date.now()
    const from = now - (now % 60_000) - (minutes - 1) * 60_000
    return {
      minutes: [...q.metrics.values()]
        .filter(m => m.minute >= from)
        .sort((a, b) => a.minute - b.minute)
        .map(m => structuredClone(m)),
      totals: structuredClone(q.totals ?? zeroCounts(0)),
    }
  }

  #expireOutcomes(): void {
    const now = Date.now()
    for (const [name, q] of this.#engine.queues) {
      for (const [id, r] of q.records)
        if (r.state === 'done' && (r.expiresAt ?? 0) <= now) q.records.delete(id)
      if (q.empty && q.events.idle && q.metrics.size === 0) this.#engine.queues.delete(name)
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    clearInterval(this.#cleanup)
    for (const q of this.#engine.queues.values()) {
      q.wake()
      q.events.close()
    }
  }
}
