/**
 * Folds of a queue's inbox that exchanges asked for (schema version 6): each runs as a statement of
 * its own after the exchange that asked, never on a call's path, and at most one per queue is under
 * way in this process. A fold that fails (a dropped connection) is left to the next one, or to the
 * sweep, which folds too: nothing in the inbox is lost by waiting.
 */
export class Folds {
  readonly #running = new Map<string, Promise<void>>()

  /** `fold` runs one queue's fold (the `fold(q, true)` call). */
  constructor(private readonly fold: (queue: string) => Promise<unknown>) {}

  /** Starts a fold of `queue` unless one is under way here. */
  request(queue: string): void {
    if (this.#running.has(queue)) return
    const run = this.fold(queue).then(
      () => undefined,
      () => undefined,
    )
    this.#running.set(queue, run)
    void run.then(() => this.#running.delete(queue))
  }

  /** Resolves once every fold under way has ended (before the pool closes). */
  async settled(): Promise<void> {
    await Promise.all(this.#running.values())
  }
}
