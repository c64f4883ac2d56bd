/**
 * memory:// — the embedded backend: every queue lives in this process, with the same semantics as
 * Redis (leases, sweeps, attempts, delays, Deferred arguments, result expiry). Brokers with the same
 * memory:// URL share one instance; when the last one closes, its tasks are gone.
 */
import {
  backoffDelay,
  leaseMs,
  stallMs,
  type Backend,
  type BackendLimits,
  type ExchangeResult,
  type Finish,
  type Lease,
  type NewTask,
  type QueueInfo,
  type WorkerInfo,
  type OutcomeListener,
  type ReservedTask,
  type TaskState,
} from '../backend.js'
import { boundedOutcome, cancelledOutcome, expiredOutcome, outcomeStatus } from '../../outcome.js'
import { QueueState, type TaskRecord } from './queue-state.js'
import { BrokerClosed } from '../../errors.js'

const CLEANUP_MS = 1000

/** The embedded backend. */
export class MemoryBackend implements Backend {
  readonly url: string
  readonly limits: BackendLimits
  readonly #queues = new Map<string, QueueState>()
  readonly #listeners: OutcomeListener[] = []
  #tokens = 0
  #cleanup: NodeJS.Timeout
  #closed = false

  constructor(url: string, limits: BackendLimits) {
    this.url = url
    this.limits = limits
    this.#cleanup = setInterval(() => this.#expireOutcomes(), CLEANUP_MS).unref()
  }

  #q(name: string): QueueState {
    let q = this.#queues.get(name)
    if (!q) this.#queues.set(name, (q = new QueueState()))
    return q
  }

  /** The live or kept record of a task, after lazily dropping an expired outcome. */
  #get(queue: string, id: string): TaskRecord | undefined {
    const q = this.#queues.get(queue)
    const r = q?.records.get(id)
    if (r && r.state === 'done' && (r.expiresAt ?? 0) <= Date.now()) {
      q!.records.delete(id)
      return undefined
    }
    return r
  }

  async enqueue(queue: string, tasks: readonly NewTask[]): Promise<Array<'ok' | 'duplicate'>> {
    return tasks.map(t => this.#enqueueOne(queue, t))
  }

  #enqueueOne(queue: string, task: NewTask): 'ok' | 'duplicate' {
    const q = this.#q(queue)
    const old = this.#get(queue, task.id)
    if (old && old.state !== 'done') return 'duplicate'
    const rec: TaskRecord = {
      task,
      queue,
      state: 'pending',
      attempt: 0,
      slots: task.deps.map(() => undefined),
      missing: 0,
      dependents: [],
    }
    q.records.set(task.id, rec)
    for (let slot = 0; slot < task.deps.length; slot++) {
      const ref = task.deps[slot]!
      const arg = this.#get(ref.queue, ref.id)
      if (arg && arg.state !== 'done') {
        arg.dependents.push({ queue, id: task.id, slot })
        rec.missing++
        continue
      }
      const outcome =
        arg?.outcome ??
        expiredOutcome(
          'unknown',
          ref.queue,
          ref.id,
          'the argument task and its result are gone (its resultTimeout passed)',
        )
      if (outcome.charAt(0) !== 'c' && task.onError === 'fail') {
        this.#finish(rec, outcome)
        return 'ok'
      }
      rec.slots[slot] = outcome
    }
    if (rec.missing === 0) this.#ready(q, rec)
    else q.pending.add(task.id)
    return 'ok'
  }

  /** Puts a record whose arguments are all there into the wait line (or the delayed set). */
  #ready(q: QueueState, rec: TaskRecord, dueAt = rec.task.runAt): void {
    q.unlink(rec.task.id)
    if (dueAt > Date.now()) {
      rec.state = 'delayed'
      rec.dueAt = dueAt
      q.delayed.add(rec.task.id)
    } else {
      rec.state = 'enqueued'
      rec.readyAt = Date.now()
      q.wait.add(rec.task.id)
    }
    q.wake()
  }

  /** Records an outcome, delivers it, and fills (or fails) the dependents. */
  #finish(rec: TaskRecord, outcome: string): void {
    const q = this.#q(rec.queue)
    const { id } = rec.task
    q.unlink(id)
    rec.token = undefined
    rec.leaseUntil = undefined
    if (rec.task.ignoreResult) {
      q.records.delete(id)
    } else {
      rec.state = 'done'
      rec.outcome = outcome
      rec.expiresAt = Date.now() + rec.task.resultTimeout
      rec.task = { ...rec.task, payload: '' }
      for (const l of this.#listeners) l(rec.queue, id, outcome)
    }
    const dependents = rec.dependents
    rec.dependents = []
    for (const d of dependents) this.#fill(d.queue, d.id, d.slot, outcome)
  }

  #fill(queue: string, id: string, slot: number, outcome: string): void {
    const dep = this.#get(queue, id)
    if (!dep || dep.state !== 'pending' || dep.slots[slot] !== undefined) return
    if (outcome.charAt(0) !== 'c' && dep.task.onError === 'fail') return this.#finish(dep, outcome)
    dep.slots[slot] = outcome
    if (--dep.missing === 0) this.#ready(this.#q(queue), dep)
  }

  async exchange(
    queue: string,
    workerId: string,
    done: readonly Finish[],
    max: number,
  ): Promise<ExchangeResult> {
    if (this.#closed) throw new BrokerClosed('memory:// backend')
    const q = this.#q(queue)
    const now = Date.now()
    const stale: string[] = []
    for (const f of done) {
      const rec = q.records.get(f.id)
      if (!rec || rec.state !== 'processing' || rec.token !== f.token) {
        // A release is refused without a report: the task never started, so no run was lost.
        if (!f.release) stale.push(f.id)
        continue
      }
      if (f.release) {
        // Never started here: first in line again, as if it had not been reserved.
        rec.token = undefined
        rec.leaseUntil = undefined
        rec.attempt--
        rec.state = 'enqueued'
        q.processing.delete(f.id)
        q.wait = new Set([f.id, ...q.wait])
        q.wake()
      } else if (f.retryAt !== undefined) {
        rec.token = undefined
        rec.leaseUntil = undefined
        this.#ready(q, rec, f.retryAt)
      } else {
        this.#finish(rec, this.#bounded(rec, f.outcome))
      }
    }
    this.#promote(q, now)
    const reserved: ReservedTask[] = []
    for (const id of q.wait) {
      if (reserved.length >= max) break
      const rec = q.records.get(id)!
      q.wait.delete(id)
      rec.state = 'processing'
      rec.attempt++
      rec.token = `${workerId}:${++this.#tokens}`
      rec.leaseUntil = now + leaseMs(rec.task.heartrate)
      q.processing.add(id)
      reserved.push({
        ...rec.task,
        token: rec.token,
        attempt: rec.attempt,
        slots: rec.slots as string[],
      })
    }
    const result: ExchangeResult = { stale, reserved }
    if (reserved.length < max && q.delayed.size > 0) {
      let due = Infinity
      for (const id of q.delayed) due = Math.min(due, q.records.get(id)!.dueAt ?? 0)
      result.nextDueIn = Math.max(0, due - now)
    }
    return result
  }

  #bounded(rec: TaskRecord, outcome: string): string {
    return boundedOutcome(outcome, this.limits.maxPayloadBytes, () => ({
      taskName: rec.task.name,
      queue: rec.queue,
      taskId: rec.task.id,
      attempts: rec.attempt,
    }))
  }

  #promote(q: QueueState, now: number): void {
    for (const id of q.delayed) {
      const rec = q.records.get(id)!
      if ((rec.dueAt ?? 0) <= now) {
        q.delayed.delete(id)
        rec.state = 'enqueued'
        rec.readyAt = rec.dueAt
        rec.dueAt = undefined
        q.wait.add(id)
      }
    }
  }

  /** In-process work needs no handover: this backend never parks a worker and hands over none. */
  waitForWork(
    queue: string,
    _workerId: string,
    timeoutMs: number,
    signal?: AbortSignal,
  ): Promise<ReservedTask[]> {
    const q = this.#q(queue)
    if (q.wait.size > 0 || this.#closed || signal?.aborted) return Promise.resolve([])
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
    const q = this.#q(queue)
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

  async sweep(queue: string, intervalMs: number): Promise<number> {
    const q = this.#q(queue)
    const now = Date.now()
    if (now - q.lastSweep < intervalMs) return 0
    q.lastSweep = now
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
      rec.token = undefined
      rec.leaseUntil = undefined
      if (rec.attempt < rec.task.attempts) {
        this.#ready(q, rec, now + backoffDelay(rec.task.backoff, rec.attempt, Math.random()))
      } else {
        const reason =
          'the worker stopped renewing its lease (it died, hung or lost its connection)'
        this.#finish(rec, expiredOutcome(rec.task.name, queue, id, reason, rec.attempt))
      }
    }
    return handled
  }

  async status(queue: string, id: string): Promise<TaskState | null> {
    const rec = this.#get(queue, id)
    if (!rec) return null
    switch (rec.state) {
      case 'done':
        return { status: outcomeStatus(rec.outcome!), outcome: rec.outcome! }
      case 'delayed':
        return { status: 'enqueued' }
      default:
        return { status: rec.state }
    }
  }

  async cancel(queue: string, id: string): Promise<boolean> {
    const rec = this.#get(queue, id)
    if (!rec || !['pending', 'enqueued', 'delayed'].includes(rec.state)) return false
    this.#finish(rec, cancelledOutcome(rec.task.name, queue, id))
    return true
  }

  async size(queue: string): Promise<number> {
    const q = this.#queues.get(queue)
    return q ? q.wait.size + q.delayed.size + q.pending.size : 0
  }

  async purge(queue: string): Promise<number> {
    const q = this.#queues.get(queue)
    if (!q) return 0
    const ids = [...q.pending, ...q.wait, ...q.delayed]
    let n = 0
    for (const id of ids) if (await this.cancel(queue, id)) n++
    return n
  }

  async listen(listener: OutcomeListener): Promise<void> {
    this.#listeners.push(listener)
  }

  async checks(): Promise<string[]> {
    return []
  }

  async registerWorker(queue: string, info: WorkerInfo, ttlMs: number): Promise<void> {
    const now = Date.now()
    this.#q(queue).workers.set(info.id, { info: { ...info, seenAt: now }, until: now + ttlMs })
  }

  async unregisterWorker(queue: string, id: string): Promise<void> {
    const q = this.#queues.get(queue)
    if (!q) return
    q.workers.delete(id)
    if (q.processing.size + q.wait.size + q.delayed.size === 0) q.sweptAt = undefined
  }

  async inspect(queue: string): Promise<QueueInfo> {
    const q = this.#queues.get(queue)
    const now = Date.now()
    if (!q)
      return {
        waiting: 0,
        delayed: 0,
        pending: 0,
        processing: 0,
        oldestWaitingMs: null,
        workers: [],
      }
    const first = q.wait.values().next()
    const oldest = first.done ? undefined : q.records.get(first.value)?.readyAt
    for (const [id, w] of q.workers) if (w.until <= now) q.workers.delete(id)
    return {
      waiting: q.wait.size,
      delayed: q.delayed.size,
      pending: q.pending.size,
      processing: q.processing.size,
      oldestWaitingMs: oldest === undefined ? null : now - oldest,
      workers: [...q.workers.values()].map(w => w.info),
    }
  }

  #expireOutcomes(): void {
    const now = Date.now()
    for (const [name, q] of this.#queues) {
      for (const [id, r] of q.records)
        if (r.state === 'done' && (r.expiresAt ?? 0) <= now) q.records.delete(id)
      if (q.records.size === 0 && q.wakers.size === 0 && q.workers.size === 0)
        this.#queues.delete(name)
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    clearInterval(this.#cleanup)
    for (const q of this.#queues.values()) q.wake()
  }
}
