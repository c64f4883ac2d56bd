/**
 * A worker's finishes as the `exchange` function reads them: a release, a retry (its error without
 * the stack), or an outcome bounded by maxPayloadBytes (an oversize result becomes a failure that
 * names the task), each with the worker's measured run and wait times.
 */
import type { Finish } from '../backend.js'
import { boundedOutcome, outcomeError } from '../../outcome.js'

/** What a backend knows of a task it reserved: its name and attempt, by token. */
export type ReservedNames = Map<string, { name: string; attempt: number }>

/** The JSON-ready finishes of `done`; forgets their tokens in `reserved`. */
export function encodeFinishes(
  queue: string,
  done: readonly Finish[],
  reserved: ReservedNames,
  maxPayloadBytes: number,
): object[] {
  return done.map(f => {
    const known = reserved.get(f.token)
    reserved.delete(f.token)
    if (f.release) return { id: f.id, token: f.token, release: true }
    const times = { runMs: f.runMs, waitMs: f.waitMs }
    if (f.retryAt !== undefined) {
      const { stack: _stack, ...error } = outcomeError(f.outcome)
      return { id: f.id, token: f.token, retryAt: f.retryAt, error, ...times }
    }
    const outcome = boundedOutcome(f.outcome, maxPayloadBytes, () => ({
      taskName: known?.name ?? 'unknown',
      queue,
      taskId: f.id,
      attempts: known?.attempt,
    }))
    return { id: f.id, token: f.token, outcome, ...times }
  })
}
