/**
 * The progress writer of a pool: the latest progress value of each running task goes to the
 * backend, all tasks' values in one call at most every `intervalMs` (values reported faster are
 * coalesced: only the latest is written), and a task's last value is written as it ends, before
 * its finish, so that it is the one `info()` shows and the last one listeners hear.
 */
import type { Backend, ProgressUpdate } from '../backends/backend.js'

/** How often a pool writes progress, at most: ten times a second. */
export const PROGRESS_INTERVAL_MS = 100

export class ProgressWriter {
  readonly #pending = new Map<string, ProgressUpdate>()
  #timer: NodeJS.Timeout | undefined
  #lastWrite = 0

  constructor(
    private readonly backend: Backend,
    private readonly queue: string,
    private readonly onError: (err: Error) => void,
    private readonly intervalMs = PROGRESS_INTERVAL_MS,
  ) {}

  /** Records the latest progress of a running task; it is written within `intervalMs`. */
  report(update: ProgressUpdate): void {
    this.#pending.set(update.id, update)
    if (this.#timer) return
    const wait = Math.max(0, this.#lastWrite + this.intervalMs - Date.now())
    this.#timer = setTimeout(() => {
      this.#timer = undefined
      this.#write([...this.#pending.values()])
      this.#pending.clear()
    }, wait)
  }

  /**
   * Writes the task's unwritten progress now. Called as the task ends, before its finish is sent:
   * both go through the same backend connection, in this order.
   */
  flush(id: string): void {
    const update = this.#pending.get(id)
    if (!update) return
    this.#pending.delete(id)
    this.#write([update])
  }

  /** Drops a task's unwritten progress (it was cancelled, or its lease lost). */
  forget(id: string): void {
    this.#pending.delete(id)
  }

  #write(updates: ProgressUpdate[]): void {
    if (updates.length === 0) return
    this.#lastWrite = Date.now()
    this.backend.progress(this.queue, updates).catch((err: unknown) => this.onError(err as Error))
  }

  /** Writes what is pending and stops the timer. */
  close(): void {
    clearTimeout(this.#timer)
    this.#timer = undefined
    this.#write([...this.#pending.values()])
    this.#pending.clear()
  }
}
