/**
 * The events of a ChildProcessExecutor, typed. The CLI logs them; the library never prints.
 */
import type { RemoteError } from '../../errors.js'

/** Why a child process exited. */
export type ChildExitReason =
  /** It ran `maxTasksPerChild` tasks, or a timed-out task of it would not stop. */
  | 'recycled'
  /**
   * It died by itself (exit, uncaught exception, unhandled rejection, out of memory) or by a signal
   * from outside, after it was ready or as it started.
   */
  | 'crashed'
  /** It was killed: a task overran its timeout, or ignored a cancel, by more than `killGrace`. */
  | 'timeout'
  /** The executor closed (the pool stopped). */
  | 'stopped'
  /** It could not load the tasks module (`error` says why). */
  | 'load-failed'

/** Every event a ChildProcessExecutor emits, with its payload. */
export interface ChildExecutorEvents {
  /** A child process was forked. */
  'child:spawn': [
    {
      /** The child's process id. */
      pid: number
    },
  ]
  /** A child loaded the tasks module and exposes these task names. */
  'child:ready': [
    {
      /** The child's process id. */
      pid: number
      /** The dotted names of the tasks it runs. */
      names: string[]
    },
  ]
  /** A child exited; `tasks` is how many tasks it was given; `error` what it reported, if anything. */
  'child:exit': [
    {
      /** The child's process id. */
      pid: number
      /** Its exit code, or null when a signal ended it. */
      code: number | null
      /** The signal that ended it, or null. */
      signal: NodeJS.Signals | null
      /** Why it exited. */
      reason: ChildExitReason
      /** How many tasks it was given. */
      tasks: number
      /** What it reported before it exited (an uncaught error, a failed load), if anything. */
      error?: RemoteError
    },
  ]
}
