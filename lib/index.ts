/**
 * worq — a namespaced remote-call task queue with deferred results.
 *
 * @packageDocumentation
 */
// The declarations name Node's types (URL, AbortSignal, NodeJS.Signals): @types/node, a
// dependency, is loaded with them whatever the project's `types` (lib/ambient.ts).
/// <reference types="node" preserve="true" />
export { TaskSpace } from './taskspace.js'
export { Broker, getBroker, getQueue } from './broker.js'
export type { ExposeOptions } from './broker.js'
export type { TaskType } from './admin/queue-admin.js'
export type { BrokerCache } from './admin/cache.js'
export type { TaskInfo, TaskError, TaskFilter, DeferredArg } from './task-info.js'
export type { Schedule, ScheduleInfo } from './admin/schedules.js'
export { EventStream } from './events/stream.js'
export type { EventsOptions } from './events/stream.js'
export type * from './events/types.js'
export type { QueueMetrics, MinuteMetrics, Percentiles } from './metrics/summary.js'
export type { QueueInfo, WorkerInfo, QueueSettings, Limit } from './backends/backend.js'
export { task } from './queue.js'
export type { Queue, LooseQueue, Remote, Arg, SpaceClient } from './queue.js'
export type { Closable, MissingNodeTypes, NodeTypesLoaded } from './ambient.js'
export { Deferred } from './deferred.js'
export { WorkerPool } from './worker/pool.js'
export type { WorkerPoolOptions, StopOptions } from './worker/pool.js'
export { ListenerError } from './worker/events.js'
export type { WorkerPoolEvents } from './worker/events.js'
export { ChildProcessExecutor, TasksModuleError } from './worker/children/index.js'
export type {
  ChildProcessExecutorOptions,
  ChildExecutorEvents,
  ChildExitReason,
} from './worker/children/index.js'
export { logPoolEvents } from './worker/log-events.js'
export type { Logger, LogFields } from './worker/log-events.js'
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
  ReplicationTimeout,
  BackendFull,
  ListingOff,
  NotRetryable,
  BackendUnreachable,
  AuthFailed,
  SchemaTooNew,
  MigrationDenied,
  TransactionsUnsupported,
  StatementTimeout,
} from './errors.js'
export type { RemoteError } from './errors.js'
export type { BackendOptions } from './backends/index.js'
export type {
  TaskOptions,
  TaskStatus,
  FinalStatus,
  Backoff,
  TaskFunction,
  TransactionClient,
} from './types.js'
