/**
 * The in-process state of one memory:// queue: its task records and the lines they wait in.
 */
import type { NewTask, TaskRef } from '../backend.js'

/** Where a record is. `done` holds an outcome until `expiresAt`. */
export type RecordState = 'pending' | 'enqueued' | 'delayed' | 'processing' | 'done'

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
  slots: Array<string | undefined>
  missing: number
  dependents: Array<TaskRef & { slot: number }>
  outcome?: string
  expiresAt?: number
  /** Epoch ms it last became ready (entered the wait line). */
  readyAt?: number
}

/** The records and lines of one queue. Sets keep insertion order, so `wait` is FIFO. */
export class QueueState {
  readonly records = new Map<string, TaskRecord>()
  wait = new Set<string>()
  readonly delayed = new Set<string>()
  readonly processing = new Set<string>()
  readonly pending = new Set<string>()
  readonly wakers = new Set<() => void>()
  /** Live workers and when their registration lapses. */
  readonly workers = new Map<string, { info: import('../backend.js').WorkerInfo; until: number }>()
  lastSweep = 0
  /**
   * When the queue was last swept, for telling a stall from dead workers (undefined: not since a
   * worker unregistered from it without work left).
   */
  sweptAt: number | undefined

  /** Moves a record out of whatever line it is in. */
  unlink(id: string): void {
    this.wait.delete(id)
    this.delayed.delete(id)
    this.processing.delete(id)
    this.pending.delete(id)
  }

  /** Wakes every worker waiting for work on this queue. */
  wake(): void {
    for (const w of this.wakers) w()
    this.wakers.clear()
  }
}
