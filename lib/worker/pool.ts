/**
 * WorkerPool: runs the functions a broker exposes, up to `concurrency` tasks at once, in this
 * process. One loop per pool: it finishes what ended and reserves what fits in one backend round
 * trip (`exchange`), blocks on the backend when there is nothing to do, renews leases in one batch
 * per heartrate, and takes part in the sweep of lapsed leases.
 */
import { hostname } from 'node:os'
import type { Backend, Finish, ReservedTask } from '../backends/backend.js'
import type { Broker } from '../broker.js'
import { expiredOutcome, outcomeStatus } from '../outcome.js'
import { TypedEmitter, type WorkerPoolEvents } from './events.js'
import type { Executor } from './executor.js'
import { isThenable } from '../resolve-args.js'
import { LeaseKeeper } from './leases.js'
import { LazyAbort } from './abort.js'
import { BrokerClosed, LeaseLost } from '../errors.js'
import { resolvePoolOptions, type StopOptions, type WorkerPoolOptions } from './pool-options.js'

export type { StopOptions, WorkerPoolOptions }

/**
 * Longest park (ms): work that arrives within it is handed straight to this pool, later work wakes
 * it with a marker. Short, because a pool that dies parked is handed work it never runs (each such
 * task waits out its lease before the sweep puts it back).
 */
const PARK_MS = 1_000

/** Average task duration under which a pool prefetches. */
const SHORT_TASK_MS = 5

interface Running {
  task: ReservedTask
  started: number
  controller: LazyAbort
}

/** Runs exposed functions of one broker's queue in this process. */
export class WorkerPool extends TypedEmitter<WorkerPoolEvents> {
  /** This worker's id. */
  readonly id: string
  readonly #broker: Broker
  readonly #concurrency: number
  readonly #prefetch: number
  /** Reserved, not started: waits for a free slot. */
  #buffer: ReservedTask[] = []
  /** Moving average of recent task durations in ms (undefined until one ended). */
  #recentMs: number | undefined
  readonly #sweepInterval: number
  readonly #blockTimeout: number
  readonly #running = new Map<string, Running>()
  readonly #executor: Executor
  #done: Finish[] = []
  #backend: Backend | undefined
  #leases: LeaseKeeper | undefined
  #state: 'idle' | 'running' | 'stopping' | 'stopped' = 'idle'
  #kick: (() => void) | undefined
  #waiting: Promise<void> | undefined
  /** A wait for work ended (woken or timed out) and no exchange has looked since. */
  #woke = false
  /** The last wait ended with a handover; no exchange since. */
  #handed = false
  /** The last exchange reserved fewer tasks than it asked for. */
  #drained = false
  #abort = new AbortController()
  #loop: Promise<void> | undefined
  #sweeper: NodeJS.Timeout | undefined
  #idle = new Set<() => void>()
  #startedAt = 0
  /** Ids whose lease loss was reported by the keeper and whose finish is still to come. */
  #lost = new Set<string>()
  #stopping: Promise<void> | undefined
  #hurry: (() => void) | undefined

  constructor(broker: Broker, options: WorkerPoolOptions = {}) {
    super()
    const o = resolvePoolOptions(broker, options)
    this.#broker = broker
    this.id = o.id
    this.#concurrency = o.concurrency
    this.#prefetch = o.prefetch
    this.#sweepInterval = o.sweepInterval
    this.#blockTimeout = o.blockTimeout
    this.#executor = o.executor
  }

  /** Starts taking tasks. Resolves once the backend is open. Starting twice throws. */
  async start(): Promise<void> {
    if (this.#state !== 'idle')
      throw new Error(`cannot start a WorkerPool that is ${this.#state}; create a new one`)
    this.#state = 'running'
    try {
      await this.#executor.start?.()
    } catch (err) {
      this.#state = 'stopped'
      throw err
    }
    const { backend } = await this.#broker.backend()
    this.#backend = backend
    this.#leases = new LeaseKeeper(
      backend,
      this.#broker.name,
      id => {
        const run = this.#running.get(id)
        if (run) this.#lost.add(id)
        run?.controller.abort(new LeaseLost(run.task.name))
        this.emit('lease:lost', { id, queue: this.#broker.name })
      },
      err => this.emit('pool:error', err),
    )
    for (const message of await backend.checks())
      this.emit('pool:warning', { queue: this.#broker.name, message })
    this.#startedAt = Date.now()
    this.#sweeper = setInterval(() => void this.#sweep(), this.#sweepInterval)
    await this.#register()
    void this.#sweep()
    this.#loop = this.#run()
  }

  /** Number of tasks running now. */
  get running(): number {
    return this.#running.size
  }

  /** Resolves when no task is running (now, or as soon as the running ones end). */
  onIdle(): Promise<void> {
    if (this.#running.size === 0) return Promise.resolve()
    return new Promise(resolve => this.#idle.add(resolve))
  }

  /**
   * Stops taking work and lets running tasks finish within `timeout`; tasks still running then are
   * handed back for another attempt, or expired when none is left. Idempotent.
   */
  async stop(options: StopOptions = {}): Promise<void> {
    const { timeout = 10_000 } = options
    if (this.#state === 'idle') {
      this.#state = 'stopped'
      return
    }
    if (this.#state !== 'running') {
      if (timeout === 0) this.#hurry?.() // a second stop({ timeout: 0 }) hands back at once
      return this.#stopping ?? this.#loop
    }
    this.#stopping = this.#stop(timeout)
    return this.#stopping
  }

  async #stop(timeout: number): Promise<void> {
    this.#state = 'stopping'
    clearInterval(this.#sweeper)
    this.#release()
    this.#abort.abort()
    this.#wakeLoop()
    let timer: NodeJS.Timeout | undefined
    const timedOut = await Promise.race([
      this.onIdle().then(() => false),
      new Promise<boolean>(r => {
        this.#hurry = () => r(true)
        timer = setTimeout(() => r(true), timeout)
      }),
    ])
    clearTimeout(timer)
    if (timedOut) this.#handBack()
    this.#leases?.stop()
    this.#state = 'stopped'
    this.#wakeLoop()
    await this.#loop
    // A handover popped as the loop ended is released here rather than left to lapse.
    if (this.#done.length > 0) {
      const late = this.#done
      this.#done = []
      await this.#backend!.exchange(this.#broker.name, this.id, late, 0).catch(() => undefined)
    }
    await this.#executor.close()
    await this.#backend!.unregisterWorker(this.#broker.name, this.id).catch(() => undefined)
  }

  /** Stops everything at once: the backend is gone. */
  #halt(): void {
    clearInterval(this.#sweeper)
    this.#leases?.stop()
    this.#running.clear()
    this.#buffer = []
    this.#state = 'stopped'
  }

  #handBack(): void {
    const queue = this.#broker.name
    for (const { task, controller } of this.#running.values()) {
      controller.abort(new Error('the worker stopped before the task finished (stop timeout)'))
      const reason = 'the worker stopped before the task finished (stop timeout)'
      this.#done.push(
        task.attempt < task.attempts
          ? { id: task.id, token: task.token, outcome: '', retryAt: Date.now() }
          : {
              id: task.id,
              token: task.token,
              outcome: expiredOutcome(task.name, queue, task.id, reason, task.attempt),
            },
      )
      this.#leases?.delete(task.id)
    }
    this.#running.clear()
  }

  async #run(): Promise<void> {
    const backend = this.#backend!
    const queue = this.#broker.name
    let failures = 0
    while (this.#state !== 'stopped' || this.#done.length > 0) {
      this.#fill()
      const free =
        this.#state === 'running'
          ? Math.max(
              0,
              this.#concurrency - this.#running.size + this.#ahead() - this.#buffer.length,
            )
          : 0
      if ((free === 0 || this.#handed) && this.#done.length === 0) {
        if (this.#state === 'stopped') break
        if (free === 0) {
          await this.#nextKick()
          continue
        }
        // Tasks were just handed over, all this pool could start. Exchange when one ends (a kick)
        // or a wake marker says work waits in line, not now for what would likely be nothing.
        this.#handed = false
        await this.#waitOrKick(undefined)
        continue
      }
      const done = this.#done
      this.#done = []
      let result
      try {
        // While running, ask to be parked: work that arrives before the next exchange is
        // reserved for this pool and handed over through waitForWork.
        this.#handed = false
        // Handed over: what can start at once, not the prefetch (a pool that dies parked loses
        // what it was handed).
        const park =
          this.#state === 'running'
            ? {
                ms: Math.min(this.#blockTimeout, PARK_MS),
                slots: this.#concurrency - this.#running.size - this.#buffer.length,
              }
            : undefined
        const exchanged = backend.exchange(queue, this.id, done, free, park)
        // Where the last exchange found the queue drained, this one likely parks: block now, while
        // Redis runs it, so the handover finds the wait in place and no block call is left to
        // write on the next call's path.
        if (park && this.#drained) this.#arm(this.#blockTimeout)
        result = await exchanged
        failures = 0
      } catch (err) {
        this.#done.unshift(...done)
        this.emit('pool:error', err as Error)
        if (err instanceof BrokerClosed) {
          this.#halt()
          break
        }
        if (this.#state === 'stopped' && ++failures > 3) break
        await delay(Math.min(100 * 2 ** failures++, 2000))
        continue
      }
      for (const id of result.stale) {
        // A lease the keeper already reported lost is not reported again when its finish is refused.
        if (!this.#lost.delete(id)) this.emit('lease:lost', { id, queue })
      }
      this.#accept(result.reserved)
      // Fewer than asked: the queue is drained. Asking again at once would only hold the next
      // finish behind an empty round trip; wait for a wake (new work) or a kick (a task ended).
      this.#drained = result.reserved.length < free
      if (this.#drained && this.#done.length === 0 && this.#state === 'running') {
        // A wait that ended while the loop was busy (a kick won the race) may have taken the only
        // wake marker for work that arrived after that exchange: look again before waiting.
        if (this.#woke) {
          this.#woke = false
          continue
        }
        await this.#waitOrKick(result.nextDueIn)
      }
    }
  }

  /** Starts waiting for work (a wake, a handover, or `ms`) unless a wait is under way. */
  #arm(ms: number): void {
    this.#waiting ??= this.#backend!.waitForWork(
      this.#broker.name,
      this.id,
      ms,
      this.#abort.signal,
    ).then(handed => {
      this.#waiting = undefined
      this.#woke = handed.length === 0
      this.#handed = handed.length > 0
      this.#accept(handed)
    })
  }

  /** Waits for work (a wake, a handover, `dueIn` ms) or a kick (a task ended), whichever first. */
  async #waitOrKick(dueIn: number | undefined): Promise<void> {
    this.#arm(Math.min(this.#blockTimeout, dueIn ?? Infinity))
    // A wait armed earlier may run longer than the next delayed task is due.
    let timer: NodeJS.Timeout | undefined
    const due =
      dueIn !== undefined && dueIn < this.#blockTimeout
        ? new Promise<void>(r => (timer = setTimeout(r, dueIn)))
        : undefined
    await Promise.race(
      due ? [this.#waiting, this.#nextKick(), due] : [this.#waiting, this.#nextKick()],
    )
    clearTimeout(timer)
    if (this.#waiting === undefined) this.#woke = false // the wait ended: this pass exchanges
  }

  /** Takes reserved tasks: buffered and started while slots are free, released when stopping. */
  #accept(tasks: readonly ReservedTask[]): void {
    for (const task of tasks) {
      // Reserved while stopping: release it unrun rather than start what nobody will finish.
      if (this.#state === 'running') {
        this.#leases!.add({ id: task.id, token: task.token, heartrate: task.heartrate })
        this.#buffer.push(task)
      } else {
        this.#done.push({ id: task.id, token: task.token, outcome: '', release: true })
      }
    }
    this.#fill()
    if (tasks.length > 0 && this.#state !== 'running') this.#wakeLoop()
  }

  /** How many tasks to hold ahead now: `prefetch` while recent tasks are short, else none. */
  #ahead(): number {
    return this.#recentMs !== undefined && this.#recentMs < SHORT_TASK_MS ? this.#prefetch : 0
  }

  /** Starts buffered tasks while slots are free. */
  #fill(): void {
    while (
      this.#state === 'running' &&
      this.#buffer.length > 0 &&
      this.#running.size < this.#concurrency
    )
      this.#start(this.#buffer.shift()!)
  }

  /** Releases prefetched tasks that never started. */
  #release(): void {
    // Each release goes to the front of the line: release the last first to keep the order.
    for (const task of this.#buffer.reverse()) {
      this.#leases?.delete(task.id)
      this.#done.push({ id: task.id, token: task.token, outcome: '', release: true })
    }
    this.#buffer = []
  }

  #nextKick(): Promise<void> {
    return new Promise(resolve => (this.#kick = resolve))
  }

  #wakeLoop(): void {
    const kick = this.#kick
    this.#kick = undefined
    kick?.()
  }

  #start(task: ReservedTask): void {
    const queue = this.#broker.name
    const started = Date.now()
    const controller = new LazyAbort()
    this.#running.set(task.id, { task, started, controller })
    if (this.listens('task:start'))
      this.emit('task:start', { id: task.id, name: task.name, queue, attempt: task.attempt })
    const env = {
      workerId: this.id,
      controller,
      progress: (value: unknown) =>
        this.emit('task:progress', { id: task.id, name: task.name, queue, value }),
    }
    const ended = (finish: Finish) => {
      const mine = this.#running.get(task.id)
      if (mine?.task.token !== task.token) return // handed back at stop: the backend will refuse it
      this.#running.delete(task.id)
      this.#leases!.delete(task.id)
      const ms = Date.now() - started
      this.#recentMs = this.#recentMs === undefined ? ms : 0.8 * this.#recentMs + 0.2 * ms
      this.#done.push(finish)
      this.#fill()
      if (this.listens('task:end')) {
        const status = finish.retryAt !== undefined ? 'retry' : outcomeStatus(finish.outcome)
        this.emit('task:end', {
          id: task.id,
          name: task.name,
          queue,
          status,
          ms,
        })
      }
      this.#wakeLoop()
      if (this.#running.size === 0) {
        for (const resolve of this.#idle) resolve()
        this.#idle.clear()
      }
    }
    // A task that returned a value has ended already; its end is handled after this start's
    // caller is done starting (the same microtask turn an awaited run would take).
    const run = this.#executor.run(task, queue, env)
    if (isThenable(run)) void Promise.resolve(run).then(ended)
    else queueMicrotask(() => ended(run))
  }

  /** Registers this worker as live for three sweep intervals; refreshed on every sweep tick. */
  async #register(): Promise<void> {
    const info = {
      id: this.id,
      hostname: hostname(),
      pid: process.pid,
      concurrency: this.#concurrency,
      running: this.#running.size,
      startedAt: this.#startedAt,
      seenAt: Date.now(),
    }
    await this.#backend!.registerWorker(this.#broker.name, info, 3 * this.#sweepInterval)
  }

  async #sweep(): Promise<void> {
    try {
      await this.#register()
      const count = await this.#backend!.sweep(this.#broker.name, this.#sweepInterval)
      if (count > 0) this.emit('pool:swept', { queue: this.#broker.name, count })
    } catch (err) {
      this.emit('pool:error', err as Error)
    }
  }
}

function delay(ms: number): Promise<void> {
  return new Promise(r => setTimeout(r, ms))
}
