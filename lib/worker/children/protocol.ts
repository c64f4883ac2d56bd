/**
 * The messages a worker and its child processes exchange over the IPC channel (structured clone,
 * `serialization: 'advanced'`). The parent keeps the backend I/O and the leases; a child only runs
 * tasks and answers with the Finish that execute() produced.
 */
import type { Finish, ReservedTask } from '../../backends/backend.js'
import type { RemoteError } from '../../errors.js'

/** What a child is told at fork, as JSON in its second argument. */
export interface ChildConfig {
  /** ms a task whose run ended (timed out) may keep running before the child asks to be retired. */
  graceMs: number
  /** Runs in their async context (`taskContext()`); absent: true. */
  taskContext?: boolean
}

/** Parent → child. */
export type ParentMessage =
  /** Run one task. */
  | { t: 'run'; task: ReservedTask; queue: string; workerId: string }
  /** Abort a running task's signal (lease lost, shutdown past its timeout). */
  | { t: 'abort'; id: string; reason: RemoteError }

/** Child → parent. */
export type ChildMessage =
  /** The tasks module loaded; these task names are exposed. */
  | { t: 'ready'; names: string[] }
  /** The tasks module could not be loaded; the child exits next. */
  | { t: 'load-error'; error: RemoteError }
  /** A task reported progress. */
  | { t: 'progress'; id: string; value: unknown }
  /** A task ended. */
  | { t: 'finish'; id: string; finish: Finish }
  /** An uncaught exception or unhandled rejection; the child exits next. */
  | { t: 'crash'; origin: string; error: RemoteError }
  /** A timed-out task ignored its abort and still runs: replace this child once it is idle. */
  | { t: 'retire'; id: string }
