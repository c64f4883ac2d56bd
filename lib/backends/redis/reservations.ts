/**
 * The tasks one Redis backend instance reserved for its workers: decoded from an exchange's reply
 * or a handover, and remembered by token until they finish, so that a result over
 * `maxPayloadBytes` fails with the task's name and attempt.
 */
import type { BackendLimits, Finish, ReservedTask } from '../backend.js'
import { boundedOutcome } from '../../outcome.js'
import { decodeReserved, parseHandover } from './codec.js'
import type { FinishEntry } from './scripts.js'

/** The tasks reserved here and not finished yet, by token. */
export class Reservations {
  readonly #limits: BackendLimits
  /** Name and attempt of tasks reserved here, by token (to describe an oversize result). */
  readonly #reserved = new Map<string, { name: string; attempt: number }>()

  /** `limits.maxPayloadBytes`: the largest outcome a finish stores. */
  constructor(limits: BackendLimits) {
    this.#limits = limits
  }

  /** The exchange.lua entries of `queue`'s finishes `done`; their tasks are forgotten. */
  finishes(queue: string, done: readonly Finish[]): FinishEntry[] {
    return done.map(f => {
      const known = this.#reserved.get(f.token)
      this.#reserved.delete(f.token)
      if (f.release) return { id: f.id, token: f.token, outcome: '', retryAt: 'release' }
      // A retry sends its failure along (for the `retrying` event), cut short when large.
      if (f.retryAt !== undefined)
        return {
          id: f.id,
          token: f.token,
          outcome: f.outcome.length > 8192 ? '' : f.outcome,
          retryAt: f.retryAt,
        }
      return { id: f.id, token: f.token, outcome: this.#bounded(queue, f, known) }
    })
  }

  /** Decodes reserved tasks and remembers their names (to describe an oversize result). */
  took(flat: readonly unknown[]): ReservedTask[] {
    const reserved = decodeReserved(flat)
    for (const t of reserved) this.#reserved.set(t.token, { name: t.name, attempt: t.attempt })
    return reserved
  }

  /** The tasks of a handover message (none from a message hand_over() did not write). */
  handed(message: string): ReservedTask[] {
    try {
      return this.took(parseHandover(message))
    } catch {
      return [] // its tasks, if any, are swept with their leases
    }
  }

  /** The outcome, or a failure saying it is over `maxPayloadBytes`. */
  #bounded(queue: string, f: Finish, known?: { name: string; attempt: number }): string {
    return boundedOutcome(f.outcome, this.#limits.maxPayloadBytes, () => ({
      taskName: known?.name ?? 'unknown',
      queue,
      taskId: f.id,
      attempts: known?.attempt,
    }))
  }
}
