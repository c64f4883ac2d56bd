/**
 * A queue's event log in memory: the last `max` events, numbered from 1, with waiters for new ones.
 * Event ids are their numbers as strings, as on Redis.
 */
import type { EventBatch, ReadOptions, StoredEvent } from '../backend.js'

type NewEvent = Omit<StoredEvent, 'eventId'>

export class EventLog {
  /** The kept events are `#events` from `#start` on; the ones before it were dropped. */
  #events: StoredEvent[] = []
  #start = 0
  /** The number of the last event appended (0: none yet). */
  #last = 0
  readonly #waiters = new Set<() => void>()

  /** Appends events, dropping the oldest beyond `max`. */
  append(events: readonly NewEvent[], max: number): void {
    if (events.length === 0) return
    for (const e of events) this.#events.push({ ...e, eventId: String(++this.#last) })
    // Dropping the oldest moves a start index; the array is cut only once the dropped part is as
    // long as the kept one. (Cutting it on every append moved `max` entries an event: 50 µs a
    // task at the default 10 000 once the log was full, 5 s for a purge of 100 000 tasks.)
    if (this.#events.length - this.#start > max) this.#start = this.#events.length - max
    if (this.#start > 0 && this.#start >= this.#events.length - this.#start) {
      this.#events = this.#events.slice(this.#start)
      this.#start = 0
    }
    for (const wake of [...this.#waiters]) wake()
  }

  /** Events after `after` ('now': after the last one so far). */
  async read(after: string, options: ReadOptions): Promise<EventBatch> {
    const from = after === 'now' ? this.#last : Number(after)
    const start = Number.isFinite(from) && from >= 0 ? from : 0
    const batch = this.#after(start, options.count)
    if (batch.events.length > 0 || batch.gap || options.blockMs <= 0 || options.signal?.aborted)
      return batch
    await new Promise<void>(resolve => {
      const done = () => {
        clearTimeout(timer)
        options.signal?.removeEventListener('abort', done)
        this.#waiters.delete(done)
        resolve()
      }
      const timer = setTimeout(done, options.blockMs)
      options.signal?.addEventListener('abort', done)
      this.#waiters.add(done)
    })
    return this.#after(start, options.count)
  }

  #after(position: number, count: number): EventBatch {
    const first = this.#events[this.#start]
    const firstNumber = first ? Number(first.eventId) : this.#last + 1
    // A position past the last event belongs to another log (a backend opened anew): start over.
    const reset = position > this.#last
    const from = reset ? firstNumber - 1 : position
    const gap = reset || from + 1 < firstNumber
    const skip = Math.max(0, from + 1 - firstNumber)
    const events = this.#events.slice(this.#start + skip, this.#start + skip + count)
    const last =
      events.length > 0
        ? events[events.length - 1]!.eventId
        : String(Math.max(from, firstNumber - 1))
    return { events, gap, last }
  }

  /** True when it holds no events and nobody waits for one. */
  get idle(): boolean {
    return this.#events.length === this.#start && this.#waiters.size === 0
  }

  /** Wakes every reader (the backend closed). */
  close(): void {
    for (const wake of [...this.#waiters]) wake()
  }
}
