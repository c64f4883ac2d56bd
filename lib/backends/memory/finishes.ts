/**
 * Pieces of memory://'s finishing (engine.ts `applyFinishes`): a release, which puts a reserved
 * task that never started back first in line, and the reading of a finish's outcome, which refuses
 * a finish it cannot read on its own rather than leave the rest of its batch unapplied.
 */
import { outcomeError } from '../../outcome.js'
import { emit } from './observe.js'
import type { QueueState, TaskRecord } from './queue-state.js'
import { freeSlots } from './shaping.js'

/**
 * Puts a reserved task that never started back first in line, its attempt uncounted, with an
 * `enqueued` event that says so (its `started` was written when it was reserved).
 */
export function release(q: QueueState, rec: TaskRecord, now: number): void {
  emit(q, 'enqueued', rec, now, {
    released: true,
    attempt: rec.attempt,
    ...(rec.workerId !== undefined && { workerId: rec.workerId }),
  })
  freeSlots(q, rec)
  q.processing.delete(rec.task.id)
  rec.token = undefined
  rec.leaseUntil = undefined
  rec.attempt--
  rec.state = 'enqueued'
  q.wait.unshift(rec.task.id, rec.task.priority)
  q.wake()
}

/** What a failed outcome says went wrong; undefined when it cannot be read. */
export function errorOf(outcome: string): ReturnType<typeof outcomeError> | undefined {
  try {
    return outcomeError(outcome)
  } catch {
    return undefined
  }
}

/** True when an outcome can be stored: a completed one as it is, any other read for its event. */
export function readable(outcome: string): boolean {
  return outcome.charAt(0) === 'c' || errorOf(outcome) !== undefined
}
