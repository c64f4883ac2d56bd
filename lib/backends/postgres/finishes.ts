/**
 * A worker's finishes as the `exchange` function reads them: a release, a retry (its error without
 * the stack), or an outcome bounded by maxPayloadBytes (an oversize result becomes a failure that
 * names the task), each with the worker's measured run and wait times.
 */
import type { Finish } from '../backend.js'
import { boundedFinish, outcomeError } from '../../outcome.js'

/** The JSON-ready finishes of `done`. */
export function encodeFinishes(
  queue: string,
  done: readonly Finish[],
  maxPayloadBytes: number,
): object[] {
  return done.map(f => {
    if (f.release) return { id: f.id, token: f.token, release: true }
    const times = { runMs: f.runMs, waitMs: f.waitMs }
    if (f.retryAt !== undefined) {
      const { stack: _stack, ...error } = outcomeError(f.outcome)
      return { id: f.id, token: f.token, retryAt: f.retryAt, error, ...times }
    }
    const outcome = boundedFinish(queue, f, maxPayloadBytes)
    return { id: f.id, token: f.token, outcome, ...times }
  })
}
