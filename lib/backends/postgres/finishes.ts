/**
 * A worker's finishes as the `exchange` function reads them: a release, a retry (its error without
 * the stack), or an outcome bounded by maxPayloadBytes (an oversize result becomes a failure that
 * names the task), each with the worker's measured run and wait times. A finish whose outcome
 * cannot be read is refused on its own (below); the rest of its batch is applied.
 */
import type { Finish } from '../backend.js'
import { boundedFinish, outcomeError } from '../../outcome.js'

/**
 * A token no reservation ever holds (tokens are `<worker>:<n>`, `<worker>:c<call>.<n>` and
 * `<worker>:h<n>`, never ending in `|`): a finish sent with it is refused by the exchange and
 * reported stale, as any finish whose token no longer matches. Its task's lease lapses and the
 * sweep puts it back or expires it.
 */
const REFUSED = '|'

/** The JSON-ready finishes of `done`. */
export function encodeFinishes(
  queue: string,
  done: readonly Finish[],
  maxPayloadBytes: number,
): object[] {
  return done.map(f => {
    if (f.release) return { id: f.id, token: f.token, release: true }
    const times = { runMs: f.runMs, waitMs: f.waitMs }
    try {
      if (f.retryAt !== undefined) {
        const { stack: _stack, ...error } = outcomeError(f.outcome)
        return { id: f.id, token: f.token, retryAt: f.retryAt, error, ...times }
      }
      // A completed outcome is stored as it is; any other is read (for its event) and must parse.
      if (f.outcome.charAt(0) !== 'c') outcomeError(f.outcome)
      const outcome = boundedFinish(queue, f, maxPayloadBytes)
      return { id: f.id, token: f.token, outcome, ...times }
    } catch {
      return { id: f.id, token: `${f.token}${REFUSED}` }
    }
  })
}
