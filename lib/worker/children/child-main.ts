/**
 * The entry point of a worker's child process (forked by child.ts; not for direct use).
 *
 * argv: `<tasks module file: URL> <ChildConfig as JSON>`. The child loads the tasks module, says
 * `ready`, then runs each task it is sent through the same execute() as an in-process pool, so
 * results, failures, the context, progress and timeouts behave the same. It exits when the IPC
 * channel closes (the parent stopped, or died), and ignores SIGINT and SIGTERM: a terminal's Ctrl-C
 * or a service manager's SIGTERM to the whole group is for the parent, which decides when children
 * end. An uncaught exception or unhandled rejection is reported to the parent, then the child exits.
 */
import type { Finish } from '../../backends/backend.js'
import { remoteError } from '../../outcome.js'
import { text } from '../../remote-error.js'
import { isThenable } from '../../resolve-args.js'
import { encodeValue } from '../../serializer.js'
import type { TaskFunction } from '../../types.js'
import { LazyAbort } from '../abort.js'
import type { TaskContext } from '../context.js'
import { execute, makeRunner, type Runner } from '../execute.js'
import type { ChildConfig, ChildMessage, ParentMessage } from './protocol.js'
import { loadTasks, type TaskMap } from './tasks-module.js'
import { reviveError } from './revive-error.js'

const [, , moduleUrl = '', configJson = '{}'] = process.argv
const config = JSON.parse(configJson) as ChildConfig
const running = new Map<string, LazyAbort>()
/** Ids of tasks whose function has not settled yet (it may outlive its run after a timeout). */
const unsettled = new Set<string>()

/** Sends a message to the parent; resolves once sent (or at once without a parent). Never rejects. */
function send(msg: ChildMessage): Promise<void> {
  return new Promise(resolve => {
    if (!process.connected) return resolve()
    try {
      process.send!(msg, undefined, {}, () => resolve())
    } catch {
      // A value that cannot be cloned: send what can be said about it.
      try {
        process.send!(plain(msg), undefined, {}, () => resolve())
      } catch {
        resolve() // the channel closed meanwhile
      }
    }
  })
}

function plain(msg: ChildMessage): ChildMessage {
  if (msg.t === 'progress') return { ...msg, value: text(msg.value) }
  if ('error' in msg) return { ...msg, error: { ...msg.error, cause: text(msg.error.cause) } }
  return msg
}

/**
 * A task's progress, checked here as an in-process pool checks it (a value the serializer cannot
 * carry is a TypeError to the task), then sent to the parent, which stores it.
 */
function progress(id: string, value: unknown): void {
  try {
    encodeValue(value)
  } catch (err) {
    throw new TypeError(`the progress value cannot be sent: ${remoteError(err).message}`, {
      cause: err,
    })
  }
  void send({ t: 'progress', id, value })
}

function exitAfter(msg: ChildMessage, code: number): void {
  setTimeout(() => process.exit(code), 1000)
  void send(msg).then(() => process.exit(code))
}

process.on('disconnect', () => process.exit(0))
process.on('SIGINT', () => undefined)
process.on('SIGTERM', () => undefined)
process.on('uncaughtException', (err, origin) => {
  exitAfter({ t: 'crash', origin, error: remoteError(err) }, 1)
})

/** A promise-like result; false for one whose `then` cannot be read (execute() fails it). */
function thenable(v: unknown): v is PromiseLike<unknown> {
  try {
    return isThenable(v)
  } catch {
    return false
  }
}

/** Wraps a task function to know when it settles, even after its run ended (timeout). */
function tracked(fn: TaskFunction): TaskFunction {
  return function (this: TaskContext, ...args: unknown[]) {
    const result = fn.apply(this, args)
    if (thenable(result)) {
      const id = this.taskId
      unsettled.add(id)
      const done = () => unsettled.delete(id)
      ;(result as PromiseLike<unknown>).then(done, done)
    }
    return result
  }
}

async function run(runner: Runner, msg: Extract<ParentMessage, { t: 'run' }>): Promise<void> {
  const { task, queue, workerId } = msg
  const controller = new LazyAbort()
  running.set(task.id, controller)
  const env = {
    workerId,
    controller,
    progress: (value: unknown) => progress(task.id, value),
  }
  const finish: Finish = await execute(task, queue, runner, env)
  running.delete(task.id)
  await send({ t: 'finish', id: task.id, finish })
  if (unsettled.has(task.id)) {
    // The run ended (its timeout) but the function goes on: past the grace, ask to be replaced.
    setTimeout(() => {
      if (unsettled.has(task.id)) void send({ t: 'retire', id: task.id })
    }, config.graceMs).unref()
  }
}

async function main(): Promise<void> {
  let tasks: TaskMap
  try {
    tasks = await loadTasks(moduleUrl)
  } catch (err) {
    exitAfter({ t: 'load-error', error: remoteError(err) }, 1)
    return
  }
  const runner = makeRunner(name => {
    const fn = tasks.get(name)
    return fn && tracked(fn)
  }, config.taskContext !== false)
  process.on('message', (msg: ParentMessage) => {
    if (msg.t === 'run') void run(runner, msg)
    else if (msg.t === 'abort') running.get(msg.id)?.abort(reviveError(msg.reason))
  })
  await send({ t: 'ready', names: [...tasks.keys()] })
}

if (!process.send) {
  process.exitCode = 2 // not forked with an IPC channel: nothing to do
} else {
  void main()
}
