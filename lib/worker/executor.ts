/**
 * Executors run reserved tasks for a WorkerPool. The pool keeps the backend I/O (reserve, finish,
 * lease renewal); an executor only turns a task into a Finish. The in-process executor runs the
 * broker's exposed functions on this event loop; the child-process executor (lib/worker/children)
 * runs them in managed child processes.
 */
import type { Finish, ReservedTask } from '../backends/backend.js'
import { execute, type Runner, type RunEnv } from './execute.js'

/** Runs tasks; the pool calls `run` for each reserved task and `close` when it stops. */
export interface Executor {
  /** Prepares the executor (forks child processes); the pool awaits it in `start()`. Optional. */
  start?(): Promise<void>
  /**
   * Runs one task: its Finish, at once or as a promise. Never throws or rejects: every way a run
   * can end is a Finish.
   */
  run(task: ReservedTask, queue: string, env: RunEnv): Finish | Promise<Finish>
  /** The task names this executor runs, when they are not the broker's own (child processes). */
  exposedNames?(): readonly string[]
  /** Releases what the executor holds (child processes). Tasks still running are abandoned. */
  close(): Promise<void>
  /**
   * Where the executor reports errors that are no task's (a listener of its own events that
   * threw): the pool passes its `pool:error`. Optional.
   */
  onError?(report: (err: Error) => void): void
}

/** Runs tasks on this process's event loop. */
export class InProcessExecutor implements Executor {
  constructor(private readonly runner: Runner) {}

  run(task: ReservedTask, queue: string, env: RunEnv): Finish | Promise<Finish> {
    return execute(task, queue, this.runner, env)
  }

  async close(): Promise<void> {}
}
