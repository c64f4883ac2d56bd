/**
 * Child-process isolation for a WorkerPool: `new WorkerPool(broker, { processes, tasks })`, or an
 * executor built here and passed as `{ executor }`.
 */
export { ChildProcessExecutor } from './child-executor.js'
export type { ChildProcessExecutorOptions } from './options.js'
export type { ChildExecutorEvents, ChildExitReason } from './events.js'
export {
  loadTasks,
  collectTasks,
  asTaskSpace,
  tasksModuleUrl,
  TasksModuleError,
} from './tasks-module.js'
export type { TaskMap } from './tasks-module.js'
