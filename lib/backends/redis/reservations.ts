/**
 * Between one Redis backend instance and its workers: the finishes a worker sends back, as
 * exchange.lua reads them (a result over `maxPayloadBytes` fails with the name and attempt the
 * worker reports in its Finish; an outcome that cannot be read is refused on its own), and the
 * tasks of a handover message.
 */
import type { BackendLimits, Finish, ReservedTask } from '../backend.js'
import { boundedFinish, finalOutcomeReadable } from '../../outcome.js'
import { decodeReserved, parseHandover } from './codec.js'
import type { FinishEntry } from './scripts.js'

/**
 * A token no reservation ever holds (tokens are `<worker>:<nonce>.<n>`, never ending in `|`): a
 * finish sent with it is refused by the exchange and reported stale, as any finish whose token no
 * longer matches. Its task's lease lapses and the sweep puts it back or expires it.
 */
const REFUSED = '|'

/** Encodes finishes, and decodes handovers. */
export class Reservations {
  readonly #limits: BackendLimits

  /** `limits.maxPayloadBytes`: the largest outcome a finish stores. */
  constructor(limits: BackendLimits) {
    this.#limits = limits
  }

  /** The exchange.lua entries of `queue`'s finishes `done`. */
  finishes(queue: string, done: readonly Finish[]): FinishEntry[] {
    return done.map(f => {
      if (f.release) return { id: f.id, token: f.token, outcome: '', retryAt: 'release' }
      // A retry sends its failure along (for the `retrying` event), cut short when large.
      if (f.retryAt !== undefined)
        return {
          id: f.id,
          token: f.token,
          outcome: f.outcome.length > 8192 ? '' : f.outcome,
          retryAt: f.retryAt,
        }
      // An outcome that cannot be read is refused alone, as memory:// and PostgreSQL refuse it:
      // stored, it failed every read of the task (status, result, info) with a raw TypeError or
      // SyntaxError. Checked here, not in exchange.lua: a completed outcome costs one comparison.
      if (!finalOutcomeReadable(f.outcome))
        return { id: f.id, token: `${f.token}${REFUSED}`, outcome: '' }
      return {
        id: f.id,
        token: f.token,
        outcome: boundedFinish(queue, f, this.#limits.maxPayloadBytes),
      }
    })
  }

  /** The tasks of a handover message (none from a message hand_over() did not write). */
  handed(message: string): ReservedTask[] {
    try {
      return decodeReserved(parseHandover(message))
    } catch {
      return [] // its tasks, if any, are swept with their leases
    }
  }
}
