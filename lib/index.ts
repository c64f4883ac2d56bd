/**
 * worq — a namespaced remote-call task queue with deferred results.
 *
 * @packageDocumentation
 */
export { TaskSpace } from './taskspace.js'
export { Broker, getBroker, getQueue } from './broker.js'
export type { ExposeOptions } from './broker.js'
export { task } from './queue.js'
export type { Queue, LooseQueue, Remote, Arg, SpaceClient } from './queue.js'
export { Deferred } from './deferred.js'
export { WorkerPool } from './worker/pool.js'
export type { WorkerPoolOptions, StopOptions } from './worker/pool.js'
export type { WorkerPoolEvents } from './worker/events.js'
export { ChildProcessExecutor, TasksModuleError } from './worker/children/index.js'
export type {
  ChildProcessExecutorOptions,
  ChildExecutorEvents,
  ChildExitReason,
} from './worker/children/index.js'
export { logPoolEvents } from './cli/log-events.js'
export type { Logger, LogFields } from './cli/logger.js'
export { taskContext } from './worker/context.js'
export type { TaskContext } from './worker/context.js'
export {
  WorqError,
  TaskFailure,
  TaskExpired,
  TaskCancelled,
  DuplicateTask,
  WaitTimeout,
  NoResultYet,
  BrokerClosed,
  PayloadTooLarge,
  BadUrl,
  TaskTimeout,
  LeaseLost,
  UnsupportedServer,
} from './errors.js'
export type { RemoteError } from './errors.js'
export type { BackendOptions } from './backends/index.js'
export type { TaskOptions, TaskStatus, FinalStatus, Backoff, TaskFunction } from './types.js'
