/**
 * The events of a ChildProcessExecutor, typed. The CLI logs them; the library never prints.
 */
import type { RemoteError } from '../../errors.js'

/** Why a child process exited. */
export type ChildExitReason =
  /** It ran `maxTasksPerChild` tasks, or a timed-out task of it would not stop. */
  | 'recycled'
  /** It died by itself: exit, uncaught exception, unhandled rejection, a signal, out of memory. */
  | 'crashed'
  /** It was killed: a task overran its timeout by more than `killGrace`. */
  | 'timeout'
  /** The executor closed (the pool stopped). */
  | 'stopped'
  /** It could not load the tasks module. */
  | 'load-failed'

/** Every event a ChildProcessExecutor emits, with its payload. */
export interface ChildExecutorEvents {
  /** A child process was forked. */
  'child:spawn': [{ pid: number }]
  /** A child loaded the tasks module and exposes these task names. */
  'child:ready': [{ pid: number; names: string[] }]
  /** A child exited; `tasks` is how many tasks it was given; `error` what it reported, if anything. */
  'child:exit': [
    {
      pid: number
      code: number | null
      signal: NodeJS.Signals | null
      reason: ChildExitReason
      tasks: number
      error?: RemoteError
    },
  ]
}
