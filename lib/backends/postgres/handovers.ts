/**
 * Tasks that enqueues handed to this process's parked workers (schema version 11, docs/postgres.md
 * "Handover"): each worker's tasks wait here from their notification until its next waitForWork
 * or exchange takes them; the tokens a worker took are kept until it finishes them, so that tasks
 * read again after a lost connection are not passed on twice, and so that a worker leaving gives
 * back what it was handed and never took.
 */
import type { Finish, ReservedTask } from '../backend.js'

/** A worker of a queue, as a map key. */
const keyOf = (queue: string, worker: string): string => `${queue}\u0000${worker}`

/** What was handed to this process's parked workers, per worker, and what they took. */
export class Handovers {
  /** Handed, not yet taken, per worker. */
  readonly #waiting = new Map<string, ReservedTask[]>()
  /** Tokens a worker took and has not finished, per worker. */
  readonly #took = new Map<string, Set<string>>()
  /** Workers that parked here (queue, worker), read again after a lost connection. */
  readonly #parked = new Map<string, [string, string]>()

  /**
   * `worker` of `queue` asked to be parked: handovers to it are taken from now on, until it leaves
   * (`forget`). A handover for a worker that left is dropped: its leaving gave the task back.
   */
  parked(queue: string, worker: string): void {
    this.#parked.set(keyOf(queue, worker), [queue, worker])
  }

  /** The workers that parked here, as [queue, worker]. */
  workers(): Array<[string, string]> {
    return [...this.#parked.values()]
  }

  /** Adds tasks handed to `worker`; true when any was new (not taken or waiting already). */
  put(queue: string, worker: string, tasks: readonly ReservedTask[]): boolean {
    const k = keyOf(queue, worker)
    if (!this.#parked.has(k)) return false
    const took = this.#took.get(k)
    const waiting = this.#waiting.get(k) ?? []
    const fresh = tasks.filter(t => !took?.has(t.token) && !waiting.some(w => w.token === t.token))
    if (fresh.length === 0) return false
    this.#waiting.set(k, [...waiting, ...fresh])
    return true
  }

  /** Whether tasks wait for `worker`. */
  has(queue: string, worker: string): boolean {
    return this.#waiting.has(keyOf(queue, worker))
  }

  /** The tasks waiting for `worker`, now its to run. */
  take(queue: string, worker: string): ReservedTask[] {
    const k = keyOf(queue, worker)
    const tasks = this.#waiting.get(k)
    if (!tasks) return []
    this.#waiting.delete(k)
    let took = this.#took.get(k)
    if (!took) this.#took.set(k, (took = new Set()))
    for (const t of tasks) took.add(t.token)
    return tasks
  }

  /** `worker` finished `done`: their tokens are no longer its to hold. */
  finished(queue: string, worker: string, done: readonly Finish[]): void {
    const took = this.#took.get(keyOf(queue, worker))
    if (!took) return
    for (const f of done) took.delete(f.token)
  }

  /** Drops task `id` of `queue` from what waits to be taken (it was cancelled meanwhile). */
  drop(queue: string, id: string): void {
    for (const [k, tasks] of this.#waiting) {
      if (!k.startsWith(`${queue}\u0000`)) continue
      const rest = tasks.filter(t => t.id !== id)
      if (rest.length === tasks.length) continue
      if (rest.length === 0) this.#waiting.delete(k)
      else this.#waiting.set(k, rest)
    }
  }

  /** The tokens `worker` took and holds. */
  held(queue: string, worker: string): string[] {
    return [...(this.#took.get(keyOf(queue, worker)) ?? [])]
  }

  /** `worker` left: nothing of it is kept. */
  forget(queue: string, worker: string): void {
    const k = keyOf(queue, worker)
    this.#waiting.delete(k)
    this.#took.delete(k)
    this.#parked.delete(k)
  }
}
