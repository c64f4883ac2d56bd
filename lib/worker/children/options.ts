/** How a ChildProcessExecutor runs its children: what it gives each and how long it waits. */

/** Options of a ChildProcessExecutor. */
export interface ChildProcessExecutorOptions {
  /** The tasks module each child loads: a path (relative to the working directory) or a file: URL. */
  tasks: string | URL
  /** Child processes: an integer from 1 to 256. @default 1 */
  processes?: number
  /** Tasks one child runs at once: an integer from 1 to 10 000. @default 1 */
  concurrency?: number
  /**
   * Tasks a child runs before it is replaced by a fresh one: an integer from 1 to 2^53 − 1, or
   * Infinity. @default Infinity (never)
   */
  maxTasksPerChild?: number
  /**
   * ms a child gets past a task's `timeout` to answer before it is killed; also how long an ended
   * child may take to exit before SIGKILL. From 0 to 2^31 − 1. @default 5_000
   */
  killGrace?: number
  /**
   * Node options of the children. @default `process.execArgv` without `--inspect*` (so a loader
   * such as `--import tsx` carries over)
   */
  execArgv?: string[]
  /** ms a child may take to load the tasks module at `start()`: from 1 to 2^31 − 1. @default 30_000 */
  startTimeout?: number
  /**
   * Run each task in its async context, so that `taskContext()` works anywhere in its flow; false:
   * the context is `this` in the task function alone (WorkerPool `taskContext`). @default true
   */
  taskContext?: boolean
}
