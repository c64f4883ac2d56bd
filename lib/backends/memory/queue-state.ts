/**
 * The in-process state of one memory:// queue: its task records, the lines they wait in, and what
 * the queue keeps besides (settings, limits, the result cache, schedules, events, metrics).
 */
import type {
  Limit,
  MinuteCounts,
  NewTask,
  QueueSettings,
  StoredSchedule,
  TaskRef,
  WorkerInfo,
  ControlMessage,
} from '../backend.js'
import { DEFAULT_SETTINGS } from '../backend.js'
import { EventLog } from './event-log.js'
import { Lines } from './lines.js'

/**
 * Where a record is. `held` waits for a concurrency limit's slot; `done` holds an outcome until
 * `expiresAt`.
 */
export type RecordState = 'pending' | 'enqueued' | 'delayed' | 'held' | 'processing' | 'done'

/** A dependent waiting for a task: slot ≥ 0 is an argument slot; -1 a cache follower. */
export type Dependent = TaskRef & { slot: number }

/** One task: its message, its place, its lease, its argument slots and dependents. */
export interface TaskRecord {
  task: NewTask
  queue: string
  state: RecordState
  attempt: number
  token?: string
  leaseUntil?: number
  /** When state is `delayed`: epoch ms it becomes ready. */
  dueAt?: number
  /** When state is `held`: the limit it waits for. */
  heldBy?: string
  slots: Array<string | undefined>
  missing: number
  dependents: Dependent[]
  outcome?: string
  expiresAt?: number
  /** Epoch ms it last became ready (entered the wait line). */
  readyAt?: number
  createdAt: number
  startedAt?: number
  finishedAt?: number
  workerId?: string
  /** The latest progress, serialized. */
  progress?: string
  /** The tag of the token whose finish (or cancel while it ran) ended it: its late finish is quiet. */
  finishTag?: string
  /** The outcome came from the result cache. */
  cached?: boolean
  /** The cache key it leads (single flight), once known. */
  cacheKey?: string
  /** Limits whose slots it holds while processing. */
  holds?: string[]
  /** Indexed for listing (the queue's `listing` setting when it was enqueued). */
  listed: boolean
}

/** A cached result. */
export interface CacheEntry {
  outcome: string
  expiresAt: number
}

/** The records and lines of one queue. */
export class QueueState {
  readonly records = new Map<string, TaskRecord>()
  readonly wait = new Lines()
  readonly delayed = new Set<string>()
  readonly processing = new Set<string>()
  readonly pending = new Set<string>()
  /** Tasks waiting for a slot of a concurrency limit, by limit name. */
  readonly held = new Map<string, Lines>()
  readonly wakers = new Set<() => void>()
  /** Live workers and when their registration lapses. */
  readonly workers = new Map<string, { info: WorkerInfo; until: number }>()
  lastSweep = 0
  /**
   * When the queue was last swept, for telling a stall from dead workers (undefined: not since a
   * worker unregistered from it without work left).
   */
  sweptAt: number | undefined
  settings: QueueSettings = { ...DEFAULT_SETTINGS }
  readonly limits = new Map<string, Limit>()
  /** Ids holding a slot of each limit. */
  readonly holders = new Map<string, Set<string>>()
  /** Start times within the window of each rate limit. */
  readonly starts = new Map<string, number[]>()
  /** The result cache, least recently used first (Map order). */
  readonly cache = new Map<string, CacheEntry>()
  /** Cache key → the id of the live task computing it (single flight). */
  readonly flights = new Map<string, string>()
  readonly schedules = new Map<string, StoredSchedule>()
  readonly events = new EventLog()
  readonly metrics = new Map<number, MinuteCounts>()
  /** Counts since the queue's metrics began. */
  totals: MinuteCounts | undefined
  readonly control = new Set<(message: ControlMessage) => void>()

  /** Moves a record out of whatever line it is in. */
  unlink(rec: TaskRecord): void {
    const id = rec.task.id
    this.wait.delete(id, rec.task.priority)
    this.delayed.delete(id)
    this.processing.delete(id)
    this.pending.delete(id)
    if (rec.heldBy !== undefined) {
      this.held.get(rec.heldBy)?.delete(id, rec.task.priority)
      rec.heldBy = undefined
    }
  }

  /** Moves due delayed tasks into the wait line. */
  promote(now: number): void {
    for (const id of this.delayed) {
      const rec = this.records.get(id)!
      if ((rec.dueAt ?? 0) <= now) {
        this.delayed.delete(id)
        rec.state = 'enqueued'
        rec.readyAt = rec.dueAt
        rec.dueAt = undefined
        this.wait.push(id, rec.task.priority)
      }
    }
  }

  /** Wakes every worker waiting for work on this queue. */
  wake(): void {
    for (const w of this.wakers) w()
    this.wakers.clear()
  }

  /** Tells every control listener. */
  tell(message: ControlMessage): void {
    for (const l of [...this.control]) l(message)
  }

  /** True when nothing of the queue is left to keep. */
  get empty(): boolean {
    return (
      this.records.size === 0 &&
      this.wakers.size === 0 &&
      this.workers.size === 0 &&
      this.control.size === 0 &&
      this.limits.size === 0 &&
      this.schedules.size === 0 &&
      this.cache.size === 0 &&
      !this.settings.paused
    )
  }
}
