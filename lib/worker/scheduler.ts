/**
 * The scheduler of a pool: fires the queue's periodic tasks (docs/schedules.md). Every pool of the
 * queue runs one; the backend's `fireSchedule` lets exactly one of them fire each due time, and the
 * run's task id (`<schedule id>@<due time ISO>`) makes a second firing a duplicate by construction.
 * A firing from a definition since replaced (its `gen`) is refused, and the pool reads the
 * schedules again after every firing, so it goes on with the stored one.
 * A due time missed (no pool ran: it came more than START_GRACE_MS before this pool started, or
 * has passed by more than MISSED_MS) fires once, or is skipped with `catchUp: false`.
 */
import type { Backend, StoredSchedule } from '../backends/backend.js'
import { MISSED_MS, nextDue } from '../admin/schedules.js'
import { timerMs } from './durations.js'

/**
 * A due time that came this long before the pool started counts as missed (no pool ran it): a
 * shorter gap is another pool's firing under way, which this pool's first read may not see yet.
 */
const START_GRACE_MS = 250

export class Scheduler {
  #schedules: StoredSchedule[] = []
  #timer: NodeJS.Timeout | undefined
  #stopped = false
  #loading: Promise<void> | undefined
  /** A reload was asked for while a read was under way: read again once it ends. */
  #again = false
  /** When this scheduler was made, as its pool started. */
  readonly #startedAt = Date.now()

  constructor(
    private readonly backend: Backend,
    private readonly queue: string,
    private readonly onError: (err: Error) => void,
  ) {}

  /**
   * Reads the queue's schedules again and arms the timer for the earliest due time. A call while a
   * read is under way reads once more after it: that read may have begun before the change that
   * asked for this one, so the change would be missed until the next read.
   */
  reload(): Promise<void> {
    if (this.#loading) {
      this.#again = true
      return this.#loading
    }
    this.#loading = this.#read().finally(() => (this.#loading = undefined))
    return this.#loading
  }

  async #read(): Promise<void> {
    do {
      this.#again = false
      try {
        this.#schedules = await this.backend.schedules(this.queue)
        this.#arm()
      } catch (err) {
        this.onError(err as Error)
      }
    } while (this.#again && !this.#stopped)
  }

  #arm(): void {
    clearTimeout(this.#timer)
    this.#timer = undefined
    if (this.#stopped) return
    let first = Infinity
    for (const s of this.#schedules) if (s.next !== null && s.next < first) first = s.next
    if (first === Infinity) return
    // A longer wait re-arms: the timer fires at Node's limit and reads the schedules again.
    const wait = timerMs(first - Date.now())
    this.#timer = setTimeout(() => void this.#fireDue(), wait)
    this.#timer.unref()
  }

  async #fireDue(): Promise<void> {
    const now = Date.now()
    try {
      for (const s of this.#schedules) {
        if (this.#stopped || s.next === null || s.next > now) continue
        const missed = s.next < now - MISSED_MS || s.next < this.#startedAt - START_GRACE_MS
        const fire = !missed || s.catchUp
        const next = nextDue({ ...s, runs: s.runs + (fire ? 1 : 0) }, Math.max(now, s.next))
        const task = fire
          ? { ...s.task, id: `${s.id}@${new Date(s.next).toISOString()}`, idChosen: true, runAt: 0 }
          : null
        await this.backend.fireSchedule(this.queue, s.id, s.gen, s.next, next, task)
      }
    } catch (err) {
      this.onError(err as Error)
    }
    if (!this.#stopped) await this.reload()
  }

  /** Stops firing. */
  stop(): void {
    this.#stopped = true
    clearTimeout(this.#timer)
  }
}
