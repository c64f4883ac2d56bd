/**
 * A worker's finishes on memory:// (inside `exchange`): each ends its task through the engine,
 * puts it back for a retry, or releases it (a reserved task that never started goes back first in
 * line); a finish whose outcome cannot be read is refused on its own rather than leave the rest of
 * its batch unapplied.
 */
import type { Finish } from '../backend.js'
import { boundedOutcome, outcomeError } from '../../outcome.js'
import type { MemoryEngine } from './engine.js'
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

/** Applies a worker's finishes; returns the ids of refused ones (stale; or unreadable). */
export function applyFinishes(
  engine: MemoryEngine,
  q: QueueState,
  done: readonly Finish[],
  now: number,
): string[] {
  const stale: string[] = []
  for (const f of done) {
    const rec = q.records.get(f.id)
    if (!rec || rec.state !== 'processing' || rec.token !== f.token) {
      // Quiet: a release (the task never started), or the end of a run cancelled as it ran.
      const cancelled = rec?.state === 'done' && rec.finishTag === f.token
      if (!f.release && !cancelled) stale.push(f.id)
      continue
    }
    if (f.release) {
      release(q, rec, now)
    } else if (f.retryAt !== undefined) {
      const error = errorOf(f.outcome)
      // One that cannot be read is refused alone: its lease lapses, the sweep acts on it.
      if (error) engine.retry(q, rec, f.retryAt, error, now)
      else stale.push(f.id)
    } else if (readable(f.outcome)) {
      engine.finish(rec, bounded(engine, rec, f.outcome), now, { tag: f.token })
    } else {
      stale.push(f.id)
    }
  }
  return stale
}

/** The outcome to store: one over the size limit becomes a `PayloadTooLarge` failure. */
function bounded(engine: MemoryEngine, rec: TaskRecord, outcome: string): string {
  return boundedOutcome(outcome, engine.limits.maxPayloadBytes, () => ({
    taskName: rec.task.name,
    queue: rec.queue,
    taskId: rec.task.id,
    attempts: rec.attempt,
  }))
}
