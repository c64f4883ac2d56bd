/**
 * When a ChildProcessExecutor forks a replacement for a child that exited before it was ready
 * (its tasks module failed to load, or it died as it started: killed, crashed, exited): after a
 * delay that doubles from 100 ms to 5 s while children keep failing so, so that a broken module is
 * not forked in a loop, and back to at once when a child gets ready. A child that crashes after
 * it was ready is replaced at once (the executor's refill), not here.
 */

/** Children in a row that die as they start (without a load error) before waiting tasks fail. */
export const START_FAILURES = 3

export class Respawn {
  #delay = 0
  #failures = 0
  #timer: NodeJS.Timeout | undefined

  /** @param refill forks what is missing */
  constructor(private readonly refill: () => void) {}

  /** A replacement is due later: forks wait for it. */
  get pending(): boolean {
    return this.#timer !== undefined
  }

  /** Children exited before they were ready this many times in a row. */
  get failures(): number {
    return this.#failures
  }

  /** A child got ready: the next failure is the first again. */
  ready(): void {
    this.#delay = 0
    this.#failures = 0
  }

  /** A child exited before it was ready: its replacement is forked after the delay. */
  failed(): void {
    this.#failures++
    this.#delay = Math.min(Math.max(this.#delay * 2, 100), 5_000)
    clearTimeout(this.#timer)
    this.#timer = setTimeout(() => {
      this.#timer = undefined
      this.refill()
    }, this.#delay)
  }

  /** No more replacements (the executor closed). */
  stop(): void {
    clearTimeout(this.#timer)
    this.#timer = undefined
  }
}
