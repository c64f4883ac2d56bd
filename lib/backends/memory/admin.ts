/**
 * The queue management half of memory://: settings and pause, the result cache, limits,
 * schedules, and the event and metrics reads. MemoryBackend (memory.ts) extends it with the task
 * flows, the workers and its lifecycle; both share the engine and the closed flag kept here.
 */
import {
  DEFAULT_SETTINGS,
  limitRecord,
  type BackendLimits,
  type EventBatch,
  type Limit,
  type MinuteCounts,
  type NewTask,
  type QueueSettings,
  type ReadOptions,
  type StoredSchedule,
} from '../backend.js'
import { BrokerClosed } from '../../errors.js'
import { MemoryEngine } from './engine.js'
import { emit, zeroCounts } from './observe.js'
import { setLimit, trimCache } from './shaping.js'

/** The management methods of the embedded backend. */
export abstract class MemoryAdmin {
  /** The queues of this backend and their task flows. */
  protected readonly engine: MemoryEngine
  /** Set by `close()`: every operation then rejects with BrokerClosed. */
  protected closed = false

  constructor(limits: BackendLimits) {
    this.engine = new MemoryEngine(limits)
  }

  /** Throws BrokerClosed once the backend is closed. */
  protected open(): void {
    if (this.closed) throw new BrokerClosed('memory:// backend')
  }

  // ---- queue settings ----

  async settings(queue: string): Promise<QueueSettings> {
    this.open()
    return { ...(this.engine.queues.get(queue)?.settings ?? DEFAULT_SETTINGS) }
  }

  async configure(
    queue: string,
    patch: Partial<Omit<QueueSettings, 'paused'>>,
  ): Promise<QueueSettings> {
    this.open()
    const q = this.engine.q(queue)
    q.settings = { ...q.settings, ...patch, paused: q.settings.paused }
    if (patch.cacheSize !== undefined) trimCache(q, Date.now())
    return { ...q.settings }
  }

  async pause(queue: string, paused: boolean): Promise<boolean> {
    this.open()
    const q = this.engine.q(queue)
    if (q.settings.paused === paused) return false
    q.settings = { ...q.settings, paused }
    emit(q, paused ? 'paused' : 'resumed', undefined, Date.now())
    q.tell({ type: paused ? 'paused' : 'resumed' })
    if (!paused) q.wake()
    return true
  }

  // ---- result cache ----

  async cacheDelete(queue: string, key: string): Promise<boolean> {
    this.open()
    return this.engine.queues.get(queue)?.cache.delete(key) ?? false
  }

  async cacheClear(queue: string): Promise<number> {
    this.open()
    const q = this.engine.queues.get(queue)
    if (!q) return 0
    trimCache(q, Date.now())
    const n = q.cache.size
    q.cache.clear()
    return n
  }

  async cacheSize(queue: string): Promise<number> {
    this.open()
    const q = this.engine.queues.get(queue)
    if (!q) return 0
    trimCache(q, Date.now())
    return q.cache.size
  }

  // ---- limits ----

  async setLimit(queue: string, name: string, limit: Limit | null): Promise<boolean> {
    this.open()
    return setLimit(this.engine.q(queue), name, limit)
  }

  async listLimits(queue: string): Promise<Record<string, Limit>> {
    this.open()
    return limitRecord(this.engine.queues.get(queue)?.limits ?? [])
  }

  // ---- schedules ----

  async putSchedule(queue: string, schedule: StoredSchedule): Promise<void> {
    this.open()
    const q = this.engine.q(queue)
    q.schedules.set(schedule.id, structuredClone(schedule))
    q.tell({ type: 'schedules' })
  }

  async removeSchedule(queue: string, id: string): Promise<boolean> {
    this.open()
    const q = this.engine.queues.get(queue)
    if (!q?.schedules.delete(id)) return false
    q.tell({ type: 'schedules' })
    return true
  }

  async schedules(queue: string): Promise<StoredSchedule[]> {
    this.open()
    return [...(this.engine.queues.get(queue)?.schedules.values() ?? [])].map(s =>
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
    this.open()
    const s = this.engine.queues.get(queue)?.schedules.get(id)
    if (!s || s.next !== due || s.gen !== gen) return false
    s.next = next
    if (task === null) return true
    s.last = due
    s.runs++
    this.engine.enqueue(queue, task, Date.now())
    return true
  }

  // ---- events and metrics ----

  async readEvents(queue: string, after: string, options: ReadOptions): Promise<EventBatch> {
    this.open()
    return this.engine.q(queue).events.read(after, options)
  }

  async metrics(
    queue: string,
    minutes: number,
  ): Promise<{ minutes: MinuteCounts[]; totals: MinuteCounts }> {
    this.open()
    const q = this.engine.queues.get(queue)
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
}
