/**
 * A cancel in step with this process's pools: a Redis cancel() of a task a worker holds resolves
 * once this process's control listeners of the queue heard the cancel message (at most
 * CANCEL_SYNC_MS), so a task one of its pools reserved ahead and has not started is then never
 * started. Pools in other processes hear it as the message reaches them.
 */

/** Longest wait of a cancel for this process's pools to hear it, ms. */
const CANCEL_SYNC_MS = 2_000

/** The control listeners of one backend instance, and the cancels waiting for them. */
export class CancelSync {
  /** Control subscriptions of this process, by queue. */
  readonly #controlled = new Map<string, number>()
  /** Cancels waiting for this process's pools to hear them, by queue and id. */
  readonly #waiters = new Map<string, Set<() => void>>()

  /** A control listener of `queue` subscribes; the function returned says it unsubscribed. */
  listening(queue: string): () => void {
    this.#controlled.set(queue, (this.#controlled.get(queue) ?? 0) + 1)
    return () => {
      this.#controlled.set(queue, (this.#controlled.get(queue) ?? 1) - 1)
    }
  }

  /** This process's control listeners of `queue` heard the cancel of `id`. */
  heard(queue: string, id: string): void {
    const key = `${queue}\n${id}`
    for (const done of [...(this.#waiters.get(key) ?? [])]) done()
  }

  /**
   * Resolves once this process's control listeners of `queue` heard that `id` was cancelled, or
   * after CANCEL_SYNC_MS; undefined when nothing here listens to `queue`. Called before the
   * cancel is sent: the message may arrive before the cancel's reply.
   */
  expect(queue: string, id: string): Promise<void> | undefined {
    if (!this.#controlled.get(queue)) return undefined
    const key = `${queue}\n${id}`
    return new Promise(resolve => {
      const waiters = this.#waiters.get(key) ?? new Set<() => void>()
      const done = () => {
        clearTimeout(timer)
        waiters.delete(done)
        if (waiters.size === 0 && this.#waiters.get(key) === waiters) this.#waiters.delete(key)
        resolve()
      }
      const timer = setTimeout(done, CANCEL_SYNC_MS)
      waiters.add(done)
      this.#waiters.set(key, waiters)
    })
  }
}
