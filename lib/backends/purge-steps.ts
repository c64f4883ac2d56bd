/**
 * A purge in steps, as Redis and PostgreSQL run it: each step takes up to {@link PURGE_STEP}
 * waiting tasks of the queue and cancels them in a call (a script, a transaction) of its own, so
 * that the server, and the queue's own workers and callers, are served between steps.
 */

/** Most tasks one step takes: about 20 ms of Redis's time, 150 ms of PostgreSQL's. */
export const PURGE_STEP = 1_000

/** What one step did. */
export interface PurgeStep {
  /** Tasks it cancelled. */
  cancelled: number
  /** Ids it took out of the lines (a task that had ended meanwhile is taken, not cancelled). */
  taken: number
  /** Waiting tasks left after it, where the backend counts them. */
  left?: number
  /** Waiting tasks when the first step began (asked of the first step only). */
  waiting?: number
}

/**
 * Runs `step` until a step takes fewer than it may (the lines are empty) or leaves none, or the
 * steps have taken as many as were waiting at the first (a producer enqueuing meanwhile cannot
 * keep it going); resolves with how many tasks were cancelled.
 */
export async function purgeInSteps(step: (first: boolean) => Promise<PurgeStep>): Promise<number> {
  let cancelled = 0
  let taken = 0
  let limit = Infinity
  for (let first = true; ; first = false) {
    const done = await step(first)
    if (first) limit = done.waiting ?? Infinity
    cancelled += done.cancelled
    taken += done.taken
    if (done.taken < PURGE_STEP || done.left === 0 || taken >= limit) return cancelled
  }
}
