/**
 * What a task's failure says when its child process died under it: remote class `WorkerCrashed`,
 * code `ERR_WORQ_WORKER_CRASHED`. Like any failure it is retried while attempts remain, else final.
 */
import type { RemoteError } from '../../errors.js'
import { describeExit, type Child } from './child.js'

/** The failure of a task whose child exited before answering. */
export function crashedError(
  child: Child,
  code: number | null,
  signal: NodeJS.Signals | null,
): RemoteError {
  const crash = child.crash
  const why = crash
    ? `: ${crash.origin === 'unhandledRejection' ? 'unhandled rejection' : 'uncaught exception'} ${crash.error.name}: ${crash.error.message}`
    : hint(code, signal)
  const remote: RemoteError = {
    name: 'WorkerCrashed',
    code: 'ERR_WORQ_WORKER_CRASHED',
    message: `the child process (pid ${child.pid}) running the task exited (${describeExit(code, signal)}) before the task finished${why}`,
  }
  if (crash) remote.cause = crash.error
  return remote
}

/** The failure of tasks that shared a child with a task that overran its timeout. */
export function killedForError(
  child: Child,
  taskName: string,
  why = 'did not stop after its timeout',
): RemoteError {
  return {
    name: 'WorkerCrashed',
    code: 'ERR_WORQ_WORKER_CRASHED',
    message: `the child process (pid ${child.pid}) was killed because ${taskName}, running in it too, ${why}`,
  }
}

/** The failure of tasks waiting for a child when no child could load the tasks module. */
export function loadFailedError(error: RemoteError): RemoteError {
  return {
    name: 'WorkerCrashed',
    code: 'ERR_WORQ_WORKER_CRASHED',
    message: `a new child process could not load the tasks module: ${error.message}`,
    cause: error,
  }
}

/** The failure of tasks waiting for a child when child after child died as it started. */
export function startFailedError(
  child: Child,
  code: number | null,
  signal: NodeJS.Signals | null,
  times: number,
): RemoteError {
  const last = child.crash ? `: ${child.crash.error.name}: ${child.crash.error.message}` : ''
  return {
    name: 'WorkerCrashed',
    code: 'ERR_WORQ_WORKER_CRASHED',
    message: `child processes exited ${times} times in a row before they were ready (the last, pid ${child.pid}: ${describeExit(code, signal)}${last})`,
  }
}

function hint(code: number | null, signal: NodeJS.Signals | null): string {
  if (signal === 'SIGABRT' || code === 134)
    return ' (V8 aborts like this when the heap is out of memory)'
  if (signal === 'SIGKILL') return ' (SIGKILL: the kernel out-of-memory killer, or an operator)'
  return ' (the task, or code it called, ended the process)'
}
