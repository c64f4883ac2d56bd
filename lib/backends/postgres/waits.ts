/**
 * Idle workers of a postgres:// backend waiting for a wake-up of their queue. Each queue counts the
 * wake-ups heard; a worker notes the count when it exchanges, and a wait returns at once when a
 * wake-up came since, so none is missed between an exchange and the wait that follows it.
 */
export class WorkWaits {
  readonly #heard = new Map<string, number>()
  readonly #seen = new Map<string, number>()
  readonly #waiters = new Map<string, Set<() => void>>()
  /** The wait under way of each worker (`queue\0worker`), for a wake-up of its own. */
  readonly #mine = new Map<string, () => void>()
  /** The backend closed: every wait, under way or to come, ends at once. */
  #closed = false

  /** A worker is about to look at the queue: wake-ups from now on count. */
  seen(queue: string, workerId: string): void {
    this.#seen.set(`${queue}\u0000${workerId}`, this.#heard.get(queue) ?? 0)
  }

  /** Work may be ready on `queue`. */
  wake(queue: string): void {
    this.#heard.set(queue, (this.#heard.get(queue) ?? 0) + 1)
    const set = this.#waiters.get(queue)
    if (!set) return
    this.#waiters.delete(queue)
    for (const w of set) w()
  }

  /** Ends the wait of `worker` alone (work handed to it), if one is under way. */
  wakeWorker(queue: string, worker: string): void {
    this.#mine.get(`${queue}\u0000${worker}`)?.()
  }

  /** Wakes every waiter (a reconnect, a close). */
  wakeAll(): void {
    for (const queue of [...this.#waiters.keys()]) this.wake(queue)
  }

  /**
   * The backend closed: wakes every waiter, and a wait begun later (one that was still waiting
   * for the listening connection at the close) returns at once instead of running out its time.
   */
  close(): void {
    this.#closed = true
    this.wakeAll()
  }

  /** Resolves on a wake-up of `queue` since the worker's last look, after `ms`, or on abort. */
  wait(queue: string, workerId: string, ms: number, signal?: AbortSignal): Promise<void> {
    const key = `${queue}\u0000${workerId}`
    if (
      this.#closed ||
      (this.#heard.get(queue) ?? 0) !== (this.#seen.get(key) ?? 0) ||
      signal?.aborted
    )
      return Promise.resolve()
    return new Promise(resolve => {
      const done = () => {
        clearTimeout(timer)
        signal?.removeEventListener('abort', done)
        this.#waiters.get(queue)?.delete(done)
        if (this.#mine.get(key) === done) this.#mine.delete(key)
        resolve()
      }
      const timer = setTimeout(done, ms)
      signal?.addEventListener('abort', done)
      let set = this.#waiters.get(queue)
      if (!set) this.#waiters.set(queue, (set = new Set()))
      set.add(done)
      this.#mine.set(key, done)
    })
  }
}
