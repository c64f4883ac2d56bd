/**
 * memory:// — the embedded backend: every queue lives in this process, with the same semantics as
 * Redis (leases, sweeps, attempts, delays, priorities, Deferred arguments, the result cache,
 * limits, pause, schedules, events, metrics, result expiry). Brokers with the same memory:// URL
 * share one instance; when the last one closes, its tasks are gone. This class serves the workers
 * and the task reads; the queue management methods are in admin.ts, the task flows in engine.ts
 * (finishes.ts, leases.ts), the reports in reads.ts.
 */
import {
  type Backend,
  type BackendLimits,
  type ControlMessage,
  type ExchangeResult,
  type Finish,
  type Lease,
  type ListQuery,
  type NewTask,
  type OutcomeListener,
  type ProgressUpdate,
  type QueueInfo,
  type ReservedTask,
  type StoredInfo,
  type TaskState,
  type WorkerInfo,
} from '../backend.js'
import { outcomeStatus } from '../../outcome.js'
import { ListingOff } from '../../errors.js'
import { MemoryAdmin } from './admin.js'
import { applyFinishes } from './finishes.js'
import { renew, sweep } from './leases.js'
import { cancelledNow, infoOf, inspect, list, statusOf, waitingIds } from './reads.js'
import { PURGE_STEP, purgeInSteps } from '../purge-steps.js'

const CLEANUP_MS = 1000

/** The embedded backend. */
export class MemoryBackend extends MemoryAdmin implements Backend {
  readonly url: string
  readonly limits: BackendLimits
  #cleanup: NodeJS.Timeout

  constructor(url: string, limits: BackendLimits) {
    super(limits)
    this.url = url
    this.limits = limits
    this.#cleanup = setInterval(() => this.#expireOutcomes(), CLEANUP_MS).unref()
  }

  async enqueue(queue: string, tasks: readonly NewTask[]): Promise<Array<'ok' | 'duplicate'>> {
    this.open()
    const now = Date.now()
    return tasks.map(t => this.engine.enqueue(queue, t, now))
  }

  async exchange(
    queue: string,
    workerId: string,
    done: readonly Finish[],
    max: number,
  ): Promise<ExchangeResult> {
    this.open()
    const q = this.engine.q(queue)
    const now = Date.now()
    const stale = applyFinishes(this.engine, q, done, now)
    q.promote(now)
    const reserved = this.engine.reserve(q, workerId, max, now)
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
    const q = this.engine.q(queue)
    if ((q.wait.size > 0 && !q.settings.paused) || this.closed || signal?.aborted)
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
    this.open()
    return renew(this.engine.q(queue), leases, Date.now())
  }

  async progress(queue: string, updates: readonly ProgressUpdate[]): Promise<void> {
    this.open()
    this.engine.progress(queue, updates, Date.now())
  }

  async sweep(queue: string, intervalMs: number): Promise<number> {
    this.open()
    return sweep(this.engine, queue, intervalMs, Date.now())
  }

  async status(queue: string, id: string): Promise<TaskState | null> {
    this.open()
    const rec = this.engine.get(queue, id)
    if (!rec) return null
    if (rec.state !== 'done') return { status: statusOf(rec) }
    const state: TaskState = { status: outcomeStatus(rec.outcome!), outcome: rec.outcome! }
    if (rec.cached) state.cached = true
    return state
  }

  async info(queue: string, id: string): Promise<StoredInfo | null> {
    this.open()
    const rec = this.engine.get(queue, id)
    return rec ? infoOf(rec) : null
  }

  async list(queue: string, query: ListQuery): Promise<StoredInfo[]> {
    this.open()
    const q = this.engine.q(queue)
    if (!q.settings.listing) throw new ListingOff(queue)
    return list(q, query, Date.now())
  }

  async cancel(queue: string, id: string): Promise<boolean> {
    this.open()
    return this.engine.cancel(queue, id, Date.now())
  }

  async size(queue: string): Promise<number> {
    this.open()
    const i = inspect(this.engine.queues.get(queue), Date.now())
    return i.waiting + i.delayed + i.pending
  }

  async purge(queue: string): Promise<number> {
    this.open()
    const q = this.engine.queues.get(queue)
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
        if (this.engine.cancel(queue, id, now) || (pending.has(id) && cancelledNow(q, id)))
          cancelled++
      return { cancelled, taken: ids.length, ...(waiting !== undefined && { waiting }) }
    })
  }

  async listen(listener: OutcomeListener): Promise<void> {
    this.open()
    if (!this.engine.listeners.includes(listener)) this.engine.listeners.push(listener)
  }

  async control(queue: string, listener: (message: ControlMessage) => void): Promise<() => void> {
    this.open()
    const q = this.engine.q(queue)
    q.control.add(listener)
    return () => q.control.delete(listener)
  }

  async checks(): Promise<string[]> {
    this.open()
    return []
  }

  async registerWorker(queue: string, info: WorkerInfo, ttlMs: number): Promise<void> {
    this.open()
    const now = Date.now()
    this.engine
      .q(queue)
      .workers.set(info.id, { info: { ...info, seenAt: now }, until: now + ttlMs })
  }

  async unregisterWorker(queue: string, id: string): Promise<void> {
    this.open()
    const q = this.engine.queues.get(queue)
    if (!q) return
    q.workers.delete(id)
    if (q.processing.size + q.wait.size + q.delayed.size === 0) q.sweptAt = undefined
  }

  async inspect(queue: string): Promise<QueueInfo> {
    this.open()
    return inspect(this.engine.queues.get(queue), Date.now())
  }

  #expireOutcomes(): void {
    const now = Date.now()
    for (const [name, q] of this.engine.queues) {
      for (const [id, r] of q.records)
        if (r.state === 'done' && (r.expiresAt ?? 0) <= now) q.records.delete(id)
      if (q.empty && q.events.idle && q.metrics.size === 0) this.engine.queues.delete(name)
    }
  }

  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    clearInterval(this.#cleanup)
    for (const q of this.engine.queues.values()) {
      q.wake()
      q.events.close()
    }
  }
}
