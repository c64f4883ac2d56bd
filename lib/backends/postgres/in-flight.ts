/**
 * Calls under way per queue, so that a later call waits for them: a worker's finish is sent only
 * after its earlier progress calls answered (Redis keeps that order on one connection; a pool of
 * connections does not), so progress is never dropped for arriving after its task's end.
 */
export class InFlight {
  readonly #calls = new Map<string, Set<Promise<void>>>()

  /** Counts `call` as under way for `queue` until it settles; resolves or rejects as it does. */
  async add<T>(queue: string, call: Promise<T>): Promise<T> {
    const mine = call.then(
      () => undefined,
      () => undefined,
    )
    let calls = this.#calls.get(queue)
    if (!calls) this.#calls.set(queue, (calls = new Set()))
    calls.add(mine)
    void mine.then(() => {
      calls.delete(mine)
      if (calls.size === 0 && this.#calls.get(queue) === calls) this.#calls.delete(queue)
    })
    return call
  }

  /** Resolves once every call of `queue` under way now has settled. */
  async settled(queue: string): Promise<void> {
    const calls = this.#calls.get(queue)
    if (calls) await Promise.all(calls)
  }
}
