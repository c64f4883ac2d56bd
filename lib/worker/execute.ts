/**
 * Runs one reserved task in this process and turns whatever happens into a Finish: a value, a
 * throw, a missing function, arguments that cannot be read, a result that cannot be sent.
 */
import { backoffDelay, type Finish, type ReservedTask } from '../backends/backend.js'
import {
  completedOutcome,
  failedOutcome,
  outcomeError,
  readOutcome,
  remoteError,
} from '../outcome.js'
import { startRun, type RunSpan } from '../tracing.js'
import { decodeCall } from '../serializer.js'
import { isThenable } from '../resolve-args.js'
import { TaskTimeout, type RemoteError } from '../errors.js'
import type { TaskFunction } from '../types.js'
import { timerMs } from './durations.js'
import { noteUntracked, RunContext, runInContext, type RunHost } from './context.js'
import type { LazyAbort } from './abort.js'

/** Errors that no retry can mend. */
const PERMANENT = new Set([
  'ERR_WORQ_NO_SUCH_TASK',
  'ERR_WORQ_BAD_MESSAGE',
  'ERR_WORQ_UNSERIALIZABLE_RESULT',
])

/** Finds an exposed function by name. */
export type Lookup = (name: string) => TaskFunction | undefined

/** How a process runs its tasks' functions. */
export interface Runner {
  /** Finds an exposed function by name. */
  lookup: Lookup
  /**
   * Each run in its own async context, which `taskContext()` reads (an AsyncLocalStorage); false
   * (WorkerPool `taskContext: false`): the context is `this` alone.
   */
  context: boolean
}

/** The Runner of a pool (or a pool's child process): made once, where the option is read. */
export function makeRunner(lookup: Lookup, context: boolean): Runner {
  if (!context) noteUntracked()
  return { lookup, context }
}

/** What the pool gives a run besides the task. */
export interface RunEnv extends RunHost {
  /** Aborted by the pool (lease lost, shutdown); the run's own timeout is added here. */
  readonly controller: LazyAbort
}

/**
 * Runs `task` and reports how it ended: at once when its function returns a value (no promise
 * made on the worker's hot path), else when the promise it returned settles. Never throws or
 * rejects.
 */
export function execute(
  task: ReservedTask,
  queue: string,
  runner: Runner,
  env: RunEnv,
): Finish | Promise<Finish> {
  const fn = runner.lookup(task.name)
  if (!fn) {
    return fail(task, queue, {
      name: 'NoSuchTask',
      code: 'ERR_WORQ_NO_SUCH_TASK',
      message: `no worker of queue "${queue}" exposes a task named "${task.name}"; expose it with broker.expose(space)`,
    })
  }
  let args: unknown[]
  try {
    // A task without dependencies has no slots: its references (none, unless the payload lies)
    // resolve through one shared function, not a closure made for each run.
    args = decodeCall(task.payload, task.slots.length === 0 ? noSlot : i => slotValue(task, i))
  } catch (err) {
    return fail(task, queue, {
      name: 'BadMessage',
      code: 'ERR_WORQ_BAD_MESSAGE',
      message: `the task's arguments cannot be read: ${(err as Error).message}`,
    })
  }
  const ctx = new RunContext(task, queue, env)
  const span = startRun(queue, task.name, task.id, task.attempt, task.trace)
  let value: unknown
  const call = () => fn.apply(ctx, args)
  try {
    // Most runs have no span that records (whose within() calls as is) and no timeout: they call
    // at once, with no closure more.
    if (!span.recording && !task.timeout) value = runner.context ? runInContext(ctx, call) : call()
    else
      value = span.within(() =>
        runWithin(task, env.controller, runner.context ? () => runInContext(ctx, call) : call),
      )
  } catch (err) {
    return traced(span, fail(task, queue, remoteError(err)))
  }
  let thenable: boolean
  try {
    thenable = isThenable(value)
  } catch (err) {
    // Its `then` cannot even be read (a getter or Proxy trap that throws).
    return traced(span, unreadable(task, queue, err))
  }
  if (thenable)
    return Promise.resolve(value).then(
      v => traced(span, complete(task, queue, v)),
      (err: unknown) => traced(span, fail(task, queue, remoteError(err))),
    )
  return traced(span, complete(task, queue, value))
}

/** The value of argument reference `i`, from the slots of `task`'s dependencies. */
function slotValue(task: ReservedTask, i: number): unknown {
  const slot = task.slots[i]
  if (slot === undefined) return noSlot(i)
  const read = readOutcome(slot)
  return read.ok ? read.value : read.error
}

/** An argument reference with no slot: the payload does not match the task's dependencies. */
function noSlot(i: number): never {
  throw new TypeError(`argument reference ${i} has no value`)
}

/** Ends a run's span as its finish says, and passes the finish on. */
function traced(span: RunSpan, finish: Finish): Finish {
  if (!span.recording) return finish
  if (finish.outcome.charAt(0) === 'c' && finish.retryAt === undefined) span.end()
  else span.end(outcomeError(finish.outcome))
  return finish
}

/** A completed run: its value as an outcome, or a failure when the value cannot be sent. */
function complete(task: ReservedTask, queue: string, value: unknown): Finish {
  try {
    return { id: task.id, token: task.token, outcome: completedOutcome(value) }
  } catch (err) {
    return unreadable(task, queue, err)
  }
}

/** The failure of a run whose result cannot be read or sent (`err` says why). */
function unreadable(task: ReservedTask, queue: string, err: unknown): Finish {
  return fail(task, queue, {
    name: 'UnserializableResult',
    code: 'ERR_WORQ_UNSERIALIZABLE_RESULT',
    message: `the result cannot be sent faithfully: ${remoteError(err).message}`,
  })
}

/** A failure: retried after the backoff while attempts remain, else final. */
export function fail(task: ReservedTask, queue: string, remote: RemoteError): Finish {
  const finish: Finish = {
    id: task.id,
    token: task.token,
    outcome: failedOutcome({
      taskName: task.name,
      queue,
      taskId: task.id,
      remote,
      attempts: task.attempt,
    }),
  }
  if (task.attempt < task.attempts && !PERMANENT.has(remote.code ?? ''))
    finish.retryAt = Date.now() + backoffDelay(task.backoff, task.attempt, Math.random())
  return finish
}

/**
 * Runs `call`: without a timeout, what it returns; with one, a promise that past the task's
 * timeout aborts its signal and rejects with TaskTimeout. A run that held the event loop past its
 * timeout (a synchronous loop: no timer could fire) also fails with TaskTimeout when it returns:
 * what it returned is dropped.
 */
function runWithin(task: ReservedTask, controller: LazyAbort, call: () => unknown): unknown {
  if (!task.timeout) return call()
  return raceTimeout(task, controller, call)
}

async function raceTimeout(
  task: ReservedTask,
  controller: LazyAbort,
  call: () => unknown,
): Promise<unknown> {
  let timer: NodeJS.Timeout | undefined
  const timeOut = () => {
    const err = new TaskTimeout(task.name, task.timeout)
    controller.abort(err)
    return err
  }
  const timedOut = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(timeOut()), timerMs(task.timeout))
  })
  const started = performance.now()
  const late = () => performance.now() - started > task.timeout
  try {
    const value = await Promise.race([Promise.resolve().then(call), timedOut])
    if (late()) throw timeOut()
    return value
  } catch (err) {
    if (!(err instanceof TaskTimeout) && late()) throw timeOut()
    throw err
  } finally {
    clearTimeout(timer)
  }
}
