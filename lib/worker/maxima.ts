/**
 * The maxima of a pool's counts. `new WorkerPool`, `ChildProcessExecutor` and the flags of
 * `worq worker` all check against these, so that each refuses what the others refuse
 * (docs/worker.md, "Sizing concurrency and processes").
 */

/**
 * The most tasks a pool runs at once (`concurrency`, `--concurrency`). Each running task holds a
 * lease the pool renews every heartrate (10 s by default): at 10 000 that is 1 000 renewals a
 * second from one event loop, past which the bookkeeping crowds out the tasks; run more pools
 * (workers) instead.
 */
export const MAX_CONCURRENCY = 10_000

/**
 * The most tasks a pool reserves ahead of its free slots (`prefetch`): as many as it may run. A
 * prefetched task holds a lease the pool renews as it does a running one's, so this keeps a pool
 * at most twice the renewals of {@link MAX_CONCURRENCY}; and every exchange asks for its free slots
 * plus this, which PostgreSQL reads as a 32-bit integer (a prefetch past 2^31 − 1 failed every
 * exchange there).
 */
export const MAX_PREFETCH = MAX_CONCURRENCY

/**
 * The most child processes of a pool (`processes`, `--processes`). A fixed number, not a multiple
 * of the host's cores, so that options valid on one host are valid on every host (a container sees
 * its host's cores); 256 children of 30–50 MB each are 8–13 GB, past any host this is meant for.
 */
export const MAX_PROCESSES = 256

/**
 * The largest finite `maxTasksPerChild` (`--max-tasks-per-child`): 2^53 − 1. A child's count of
 * runs is a JavaScript number, which stops counting exactly past it (2^53 + 1 reads as 2^53), so a
 * larger limit might never be met; `Infinity` says "never" outright.
 */
export const MAX_TASKS_PER_CHILD = Number.MAX_SAFE_INTEGER

/**
 * Throws the TypeError of a count option (`processes`, `concurrency`, …) that is not an integer
 * from `min` (1 unless given: `prefetch` takes 0) to `max`.
 */
export function checkCount(name: string, v: unknown, max: number, min = 1): number {
  if (!Number.isInteger(v) || (v as number) < min || (v as number) > max)
    throw new TypeError(
      `Expected \`${name}\` to be an integer from ${min} to ${max}, got ${String(v)}`,
    )
  return v as number
}

/** Throws the TypeError of a `maxTasksPerChild` that is not a count up to 2^53 − 1 or Infinity. */
export function checkMaxTasksPerChild(v: unknown): number {
  if (v === Infinity) return v
  if (!(Number.isInteger(v) && (v as number) >= 1 && (v as number) <= MAX_TASKS_PER_CHILD))
    throw new TypeError(
      `Expected \`maxTasksPerChild\` to be an integer from 1 to ${MAX_TASKS_PER_CHILD}, or Infinity (never replaced), got ${String(v)}`,
    )
  return v as number
}
