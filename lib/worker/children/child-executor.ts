/**
 * ChildProcessExecutor: runs a pool's tasks in `processes` child processes, each loading the tasks
 * module itself. The pool keeps the backend I/O and renews the leases in the parent, so a child
 * that is busy, blocked or dying cannot starve the heartbeat.
 *
 * - A task is sent to the least busy ready child (each runs up to `concurrency` at once).
 * - A child that dies (exit, uncaught exception, unhandled rejection, SIGKILL, out of memory) is
 *   replaced; each task it ran fails with `WorkerCrashed`, retried while attempts remain. One that
 *   dies before it is ready (killed as it starts, or its tasks module fails to load) is replaced
 *   after a pause (respawn.ts); the tasks waiting for a child keep waiting while one may come.
 * - A task with a `timeout`: the child aborts its signal and answers `TaskTimeout` (execute()).
 *   A child that has not answered `killGrace` ms later (its event loop is blocked) is killed and
 *   replaced, and the task fails with `TaskTimeout`. A child whose timed-out task still runs
 *   `killGrace` ms after its answer asks to be replaced.
 * - After `maxTasksPerChild` tasks a child is replaced by a fresh one once its tasks ended.
 */
import type { Finish, ReservedTask } from '../../backends/backend.js'
import { TaskTimeout, type RemoteError } from '../../errors.js'
import { remoteError } from '../../outcome.js'
import { ListenerError, TypedEmitter } from '../events.js'
import { checkDuration, timerMs } from '../durations.js'
import { fail, type RunEnv } from '../execute.js'
import type { Executor } from '../executor.js'
import { Child, type Run } from './child.js'
import { crashedError, killedForError, loadFailedError, startFailedError } from './crash.js'
import type { ChildExecutorEvents } from './events.js'
import type { ChildMessage } from './protocol.js'
import { Respawn, START_FAILURES } from './respawn.js'
import { TasksModuleError, tasksModuleUrl } from './tasks-module.js'
import { checkCount, checkMaxTasksPerChild, MAX_CONCURRENCY, MAX_PROCESSES } from '../maxima.js'
import type { ChildProcessExecutorOptions } from './options.js'

/** Runs tasks in managed child processes. */
export class ChildProcessExecutor extends TypedEmitter<ChildExecutorEvents> implements Executor {
  readonly #moduleUrl: string
  readonly #processes: number
  readonly #perChild: number
  readonly #maxTasks: number
  readonly #grace: number
  readonly #execArgv: string[]
  readonly #taskContext: boolean
  readonly #startTimeout: number
  readonly #children = new Set<Child>()
  #waiting: Run[] = []
  #started: Promise<void> | undefined
  /** Settles the first start(): every child ready, or starting them failed. */
  #firstStart: { resolve(): void; reject(err: unknown): void } | undefined
  #closed = false
  #names: string[] = []
  /** Replacements of children that exited before they were ready, after a delay. */
  readonly #respawn = new Respawn(() => this.#refill())
  /** Where a listener's throw goes (the pool's `pool:error`); dropped without a pool. */
  #report: ((err: Error) => void) | undefined

  constructor(options: ChildProcessExecutorOptions) {
    super()
    const {
      processes = 1,
      concurrency = 1,
      maxTasksPerChild = Infinity,
      killGrace = 5_000,
      startTimeout = 30_000,
    } = options
    this.#moduleUrl = tasksModuleUrl(options.tasks)
    this.#processes = checkCount('processes', processes, MAX_PROCESSES)
    this.#perChild = checkCount('concurrency', concurrency, MAX_CONCURRENCY)
    this.#maxTasks = checkMaxTasksPerChild(maxTasksPerChild)
    this.#grace = checkDuration('killGrace', killGrace, 0)
    this.#startTimeout = checkDuration('startTimeout', startTimeout, 1)
    this.#execArgv = options.execArgv ?? process.execArgv.filter(a => !a.startsWith('--inspect'))
    this.#taskContext = options.taskContext ?? true
  }

  /**
   * Where errors that are no task's go: a listener of this executor's events that threw.
   * @internal the pool calls it
   */
  onError(report: (err: Error) => void): void {
    this.#report = report
  }

  protected override listenerThrew(event: string, err: unknown): void {
    this.#report?.(new ListenerError(event, err))
  }

  /** The task names the children expose (known once started). */
  get names(): readonly string[] {
    return this.#names
  }

  /** The task names the children expose, for the worker's registration. */
  exposedNames(): readonly string[] {
    return this.#names
  }

  /** Pids of the live children. */
  get pids(): number[] {
    return [...this.#children].filter(c => c.state !== 'dead').map(c => c.pid)
  }

  /**
   * Forks the children and waits until `processes` of them loaded the tasks module. A child that
   * dies as it starts (killed, crashed) is replaced, after a pause, as later ones are. Rejects with
   * a TasksModuleError (`ERR_WORQ_TASKS_MODULE`) when a child cannot load the module, when three
   * children in a row die as they start, or after `startTimeout` ms, and ends them all. Idempotent.
   */
  start(): Promise<void> {
    this.#started ??= this.#startAll()
    return this.#started
  }

  async #startAll(): Promise<void> {
    let timer: NodeJS.Timeout | undefined
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`no child loaded it within ${this.#startTimeout} ms`)),
        this.#startTimeout,
      )
    })
    const all = new Promise<void>((resolve, reject) => (this.#firstStart = { resolve, reject }))
    for (let i = 0; i < this.#processes; i++) this.#spawn()
    try {
      await Promise.race([all, late])
    } catch (err) {
      await this.close()
      const e = err as RemoteError
      // The child's own TasksModuleError names the module already.
      const message =
        e.code === 'ERR_WORQ_TASKS_MODULE'
          ? e.message
          : `cannot load the tasks module ${this.#moduleUrl}: ${e.message}`
      throw new TasksModuleError(message, { cause: err })
    } finally {
      clearTimeout(timer)
      this.#firstStart = undefined
    }
  }

  /** Runs one task in a child. Never rejects. @internal the pool calls it */
  run(task: ReservedTask, queue: string, env: RunEnv): Promise<Finish> {
    return new Promise<Finish>(resolve => {
      const signal = env.controller.signal
      const run: Run = {
        task,
        queue,
        env,
        settle: finish => {
          clearTimeout(run.timer)
          clearTimeout(run.abortTimer)
          signal.removeEventListener('abort', onAbort)
          run.child?.runs.delete(task.id)
          resolve(finish)
        },
      }
      const onAbort = () => this.#abort(run, signal.reason)
      if (this.#closed) {
        run.settle(fail(task, queue, stoppedError()))
        return
      }
      if (signal.aborted) {
        run.settle(fail(task, queue, remoteError(signal.reason)))
        return
      }
      signal.addEventListener('abort', onAbort, { once: true })
      this.#waiting.push(run)
      void this.start().catch(() => undefined)
      this.#dispatch()
    })
  }

  /** Ends every child (tasks still running are abandoned: the pool handed them back). */
  async close(): Promise<void> {
    this.#closed = true
    this.#respawn.stop()
    const waiting = this.#waiting
    this.#waiting = []
    for (const run of waiting) run.settle(fail(run.task, run.queue, stoppedError()))
    await Promise.all([...this.#children].map(c => c.end('stopped', Math.min(this.#grace, 1000))))
  }

  #spawn(): Child {
    const child = new Child(
      {
        moduleUrl: this.#moduleUrl,
        execArgv: this.#execArgv,
        config: { graceMs: this.#grace, taskContext: this.#taskContext },
      },
      {
        message: (c, m) => this.#onMessage(c, m),
        exit: (c, code, sig) => this.#onExit(c, code, sig),
      },
    )
    this.#children.add(child)
    this.emit('child:spawn', { pid: child.pid })
    // A child that exits before it is ready is handled as it exits (#onExit).
    child.ready.then(
      names => {
        this.#names = names
        this.#respawn.ready()
        this.emit('child:ready', { pid: child.pid, names })
        if (this.#firstStart && this.#ready() >= this.#processes) this.#firstStart.resolve()
        this.#dispatch()
      },
      () => undefined,
    )
    return child
  }

  /** Children ready for work. */
  #ready(): number {
    let ready = 0
    for (const c of this.#children) if (c.state === 'ready') ready++
    return ready
  }

  /** Keeps `processes` children serving (starting or ready). */
  #refill(): void {
    if (this.#closed || this.#started === undefined || this.#respawn.pending) return
    let serving = 0
    for (const c of this.#children) if (c.state === 'starting' || c.state === 'ready') serving++
    for (; serving < this.#processes; serving++) this.#spawn()
  }

  /**
   * A child exited before it was ready: its tasks module failed to load (`child.loadError`), or it
   * died as it started (killed, crashed, exited). It is replaced after a delay (respawn.ts). The
   * tasks waiting for a child fail (retried while attempts remain) only when no child is ready to
   * take them and none is likely to be: the module failed to load, or START_FAILURES children in a
   * row died as they started.
   */
  #startFailed(child: Child, code: number | null, signal: NodeJS.Signals | null): void {
    if (this.#closed) return
    this.#respawn.failed()
    const loadError = child.loadError
    if (this.#firstStart) {
      if (loadError) this.#firstStart.reject(loadError)
      else if (this.#respawn.failures >= START_FAILURES)
        this.#firstStart.reject(startFailedError(child, code, signal, this.#respawn.failures))
    }
    if (!loadError && this.#respawn.failures < START_FAILURES) return
    for (const c of this.#children) if (c.state === 'ready') return
    const why = loadError
      ? loadFailedError(loadError)
      : startFailedError(child, code, signal, this.#respawn.failures)
    const waiting = this.#waiting
    this.#waiting = []
    for (const run of waiting) run.settle(fail(run.task, run.queue, why))
  }

  #dispatch(): void {
    while (this.#waiting.length > 0) {
      let best: Child | undefined
      for (const c of this.#children) {
        if (c.state !== 'ready' || c.runs.size >= this.#perChild) continue
        if (!best || c.runs.size < best.runs.size) best = c
      }
      if (!best) return
      const run = this.#waiting.shift()!
      this.#send(best, run)
    }
  }

  #send(child: Child, run: Run): void {
    const { task, queue } = run
    run.child = child
    child.runs.set(task.id, run)
    child.dispatched++
    if (child.dispatched >= this.#maxTasks) this.#retire(child)
    if (task.timeout > 0) {
      run.timer = setTimeout(() => this.#overran(child, run), timerMs(task.timeout + this.#grace))
    }
    child.send({ t: 'run', task, queue, workerId: run.env.workerId })
  }

  /** Stops giving `child` work, starts its replacement, and ends it once idle. */
  #retire(child: Child): void {
    if (child.state !== 'ready' && child.state !== 'starting') return
    child.state = 'retiring'
    if (child.runs.size === 0) void child.end('recycled', this.#grace)
    this.#refill()
  }

  /** The child did not answer a task `killGrace` ms after its timeout: kill it. */
  #overran(child: Child, run: Run): void {
    const { task, queue } = run
    const timeout = new TaskTimeout(task.name, task.timeout)
    run.settle(
      fail(task, queue, {
        name: 'TaskTimeout',
        code: timeout.code,
        message: `${timeout.message} (the child process did not answer within ${this.#grace} ms after it, so it was killed)`,
      }),
    )
    for (const other of [...child.runs.values()])
      other.settle(fail(other.task, other.queue, killedForError(child, task.name)))
    child.kill('timeout')
  }

  #abort(run: Run, reason: unknown): void {
    const remote = remoteError(reason)
    const child = run.child
    if (child) {
      child.send({ t: 'abort', id: run.task.id, reason: remote })
      // A run that ignores its signal (a cancel, a lost lease) past the grace is killed with its
      // child; the other runs of that child fail with WorkerCrashed (retried while attempts remain).
      run.abortTimer = setTimeout(() => {
        if (!child.runs.has(run.task.id)) return
        run.settle(fail(run.task, run.queue, remote))
        for (const other of [...child.runs.values()])
          other.settle(
            fail(
              other.task,
              other.queue,
              killedForError(
                child,
                run.task.name,
                `did not stop within ${this.#grace} ms of its ${remote.name}`,
              ),
            ),
          )
        child.kill('timeout')
      }, this.#grace)
      return
    }
    this.#waiting = this.#waiting.filter(r => r !== run)
    run.settle(fail(run.task, run.queue, remote))
  }

  #onMessage(child: Child, msg: ChildMessage): void {
    if (msg.t === 'progress') {
      try {
        child.runs.get(msg.id)?.env.progress(msg.value)
      } catch {
        // A value that cannot be stored: the pool's event still went out.
      }
    } else if (msg.t === 'finish') {
      child.runs.get(msg.id)?.settle(msg.finish)
      if (child.state === 'retiring' && child.runs.size === 0)
        void child.end('recycled', this.#grace)
      this.#dispatch()
    } else if (msg.t === 'retire') this.#retire(child)
  }

  #onExit(child: Child, code: number | null, signal: NodeJS.Signals | null): void {
    this.#children.delete(child)
    const reason = child.endReason ?? (child.loadError ? 'load-failed' : 'crashed')
    const event: ChildExecutorEvents['child:exit'][0] = {
      pid: child.pid,
      code,
      signal,
      reason,
      tasks: child.dispatched,
    }
    const error = child.crash?.error ?? child.loadError
    if (error) event.error = error
    for (const run of [...child.runs.values()]) {
      run.settle(fail(run.task, run.queue, crashedError(child, code, signal)))
    }
    this.emit('child:exit', event)
    if (!child.wasReady && !child.endReason) this.#startFailed(child, code, signal)
    else this.#refill()
    this.#dispatch()
  }
}

function stoppedError(): RemoteError {
  return {
    name: 'WorkerStopped',
    code: 'ERR_WORQ_WORKER_STOPPED',
    message: 'the worker stopped before the task was sent to a child process',
  }
}
