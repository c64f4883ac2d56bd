/**
 * The task context: what a running task may know about its run.
 *
 * A task receives it as `this` (typed with a `this: TaskContext` parameter, which TypeScript leaves
 * out of the client's argument types), and from anywhere in its async flow through
 * `taskContext()`, which also works in arrow functions. It is not an extra argument, so variadic
 * and optional parameters keep their meaning and plain functions that ignore it keep working.
 */
import { AsyncLocalStorage } from 'node:async_hooks'
import type { ReservedTask } from '../backends/backend.js'

/** What a running task may know about its run. */
export interface TaskContext {
  /** The id of the worker running the task. */
  readonly workerId: string
  /** The task id. */
  readonly taskId: string
  /** The dotted task name. */
  readonly name: string
  /** The queue name. */
  readonly queue: string
  /** 1 for the first run, 2 for the first retry, … */
  readonly attempt: number
  /** Runs allowed in all. */
  readonly attempts: number
  /**
   * Aborts when the run should stop: the task was cancelled (`deferred.cancel()`,
   * `broker.cancel(id)`: reason `TaskCancelled`), its `timeout` passed (reason `TaskTimeout`), its
   * lease was lost (reason `LeaseLost`), or the worker is shutting down past its stop timeout.
   */
  readonly signal: AbortSignal
  /** The task's `metadata` option ({} when none was given). */
  readonly metadata: Readonly<Record<string, unknown>>
  /**
   * Reports progress: any value the serializer carries, typically a number from 0 to 1 or
   * `{ done, total }`. The pool emits `task:progress`; the latest value is stored with the task
   * (`info().progress`) and reaches the caller's `deferred.onProgress` listeners, coalesced to at
   * most ten writes a second per pool.
   */
  progress(value: unknown): void
}

/** What a run's context reads of its task. @internal */
export type RunTask = Pick<ReservedTask, 'id' | 'name' | 'attempt' | 'attempts' | 'metadata'>

/** What a run's context reads of its pool. @internal */
export interface RunHost {
  readonly workerId: string
  /** Holds the run's signal (made on first read). */
  readonly controller: { readonly signal: AbortSignal }
  progress(value: unknown): void
}

/**
 * The context of one run. A class rather than an object literal with getters: a literal whose
 * getters close over each run's variables kept each run's objects alive through young-generation
 * collections (with young collections only, about 1 500 bytes per run moved to the old generation
 * against about 20 with this class), and a worker's scavenges paused about 3 ms each instead of
 * about 1 ms (docs/redis.md). @internal
 */
export class RunContext implements TaskContext {
  readonly workerId: string
  readonly taskId: string
  readonly name: string
  readonly queue: string
  readonly attempt: number
  readonly attempts: number
  readonly progress: (value: unknown) => void
  readonly #host: RunHost
  readonly #metadataJson: string | undefined
  #metadata: Readonly<Record<string, unknown>> | undefined

  constructor(task: RunTask, queue: string, host: RunHost) {
    this.workerId = host.workerId
    this.taskId = task.id
    this.name = task.name
    this.queue = queue
    this.attempt = task.attempt
    this.attempts = task.attempts
    this.progress = host.progress
    this.#host = host
    this.#metadataJson = task.metadata
  }

  get signal(): AbortSignal {
    return this.#host.controller.signal
  }

  get metadata(): Readonly<Record<string, unknown>> {
    return (this.#metadata ??= Object.freeze(
      this.#metadataJson ? (JSON.parse(this.#metadataJson) as Record<string, unknown>) : {},
    ))
  }
}

const storage = new AsyncLocalStorage<TaskContext>()

/** A pool of this process runs tasks without their async context (`taskContext: false`). */
let someUntracked = false

/**
 * Notes that a pool of this process runs tasks without their async context, which taskContext()'s
 * error then names. @internal
 */
export function noteUntracked(): void {
  someUntracked = true
}

/** Runs `fn` with `ctx` as the current task context. @internal */
export function runInContext<T>(ctx: TaskContext, fn: () => T): T {
  return storage.run(ctx, fn)
}

/**
 * The context of the task running in this async flow.
 * Throws outside a task: call it from a function a worker runs.
 */
export function taskContext(): TaskContext {
  const ctx = storage.getStore()
  if (!ctx)
    throw new Error(
      'taskContext() was called outside a running task; call it from a function a worker runs' +
        (someUntracked
          ? ' (a pool of this process runs with `taskContext: false` or `--no-task-context`: ' +
            'read the context from `this` in the task function, or turn that option off)'
          : ''),
    )
  return ctx
}
