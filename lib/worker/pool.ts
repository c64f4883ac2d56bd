/**
 * WorkerPool: runs the functions a broker exposes, up to `concurrency` tasks at once, in this
 * process. One loop per pool: it finishes what ended and reserves what fits in one backend round
 * trip (`exchange`), blocks on the backend when there is nothing to do, renews leases in one batch
 * per heartrate, hears the queue's control messages (cancels, pause, schedules), and through its
 * upkeep takes part in the sweep of lapsed leases and fires the queue's schedules. The runs
 * themselves live in slots.ts.
 */
import { hostname } from 'node:os'
import type {
  Backend,
  ControlMessage,
  Finish,
  ReservedTask,
  WorkerInfo,
} from '../backends/backend.js'
import type { Broker } from '../broker.js'
import { TypedEmitter, type WorkerPoolEvents } from './events.js'
import type { Executor } from './executor.js'
import { LeaseKeeper } from './leases.js'
import { BrokerClosed } from '../errors.js'
import { resolvePoolOptions, type StopOptions, type WorkerPoolOptions } from './pool-options.js'
import { ProgressWriter } from './progress.js'
import { Slots, type SlotsHost } from './slots.js'
import { Upkeep } from './upkeep.js'

export type { StopOptions, WorkerPoolOptions }

/**
 * Longest park (ms): work that arrives within it is handed straight to this pool, later work wakes
 * it with a marker. Short, because a pool that dies parked is handed work it never runs (each such
 * task waits out its lease before the sweep puts it back).
 */
const PARK_MS = 1_000

/** What a started pool holds. */
interface Started {
  backend: Backend
  slots: Slots
  progress: ProgressWriter
  leases: LeaseKeeper
  upkeep: Upkeep
  unsubscribe: () => void
}

/** Runs exposed functions of one broker's queue in this process. */
export class WorkerPool extends TypedEmitter<WorkerPoolEvents> {
  /** This worker's id. */
  readonly id: string
  readonly #broker: Broker
  readonly #concurrency: number
  readonly #prefetch: number
  readonly #sweepInterval: number
  readonly #blockTimeout: number
  readonly #executor: Executor
  #done: Finish[] = []
  #on: Started | undefined
  #state: 'idle' | 'running' | 'stopping' | 'stopped' = 'idle'
  #kick: (() => void) | undefined
  #waiting: Promise<void> | undefined
  /** A wait for work ended (woken or timed out) and no exchange has looked since. */
  #woke = false
  /** The last wait ended with a handover; no exchange since. */
  #handed = false
  /** The queue is paused, as this pool last heard. */
  #paused = false
  /** The last exchange reserved fewer tasks than it asked for. */
  #drained = false
  #abort = new AbortController()
  #loop: Promise<void> | undefined
  #startedAt = 0
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
    const queue = this.#broker.name
    const error = (err: Error) => this.emit('pool:error', err)
    const leases = new LeaseKeeper(
      backend,
      queue,
      id => {
        this.#on?.slots.leaseLost(id)
        this.emit('lease:lost', { id, queue })
      },
      error,
    )
    const progress = new ProgressWriter(backend, queue, error)
    const slots = new Slots(this.#slotsHost(leases, progress), this.#concurrency, this.#prefetch)
    for (const message of await backend.checks()) this.emit('pool:warning', { queue, message })
    this.#startedAt = Date.now()
    const unsubscribe = await backend.control(queue, m => this.#onControl(m))
    const upkeep = new Upkeep(backend, queue, this.#sweepInterval, {
      info: () => this.#info(),
      swept: count => this.emit('pool:swept', { queue, count }),
      error,
    })
    this.#on = { backend, slots, progress, leases, upkeep, unsubscribe }
    await upkeep.start()
    this.#paused = (await backend.settings(queue)).paused
    if (this.#paused) this.emit('pool:paused', { queue })
    this.#loop = this.#run()
  }

  #slotsHost(leases: LeaseKeeper, progress: ProgressWriter): SlotsHost {
    const accepting = () => this.#state === 'running'
    return {
      workerId: this.id,
      queue: this.#broker.name,
      executor: this.#executor,
      leases,
      progress,
      get accepting() {
        return accepting()
      },
      ended: finish => {
        this.#done.push(finish)
        this.#wakeLoop()
      },
      emit: (event, ...args) => this.emit(event, ...args),
      listens: event => this.listens(event),
    }
  }

  /** What the queue's control messages ask of this pool. */
  #onControl(m: ControlMessage): void {
    const queue = this.#broker.name
    if (m.type === 'cancel') this.#on?.slots.cancel(m.id)
    else if (m.type === 'paused') {
      this.#paused = true
      // What the pool holds ahead has not started: back in line, first, until the resume.
      if (this.#on && this.#state === 'running') {
        this.#done.push(...this.#on.slots.release())
        this.#wakeLoop()
      }
      this.emit('pool:paused', { queue })
    } else if (m.type === 'resumed') {
      this.#paused = false
      this.emit('pool:resumed', { queue })
      this.#wakeLoop()
    } else if (m.type === 'schedules') void this.#on?.upkeep.scheduler.reload()
    else if (m.type === 'resync') void this.#resync()
  }

  /** After missed control messages: the schedules and the pause as they are now. */
  async #resync(): Promise<void> {
    const on = this.#on
    if (!on || this.#state !== 'running') return
    void on.upkeep.scheduler.reload()
    try {
      const { paused } = await on.backend.settings(this.#broker.name)
      if (paused !== this.#paused) this.#onControl({ type: paused ? 'paused' : 'resumed' })
    } catch (err) {
      this.emit('pool:error', err as Error)
    }
  }

  /** Number of tasks running now. */
  get running(): number {
    return this.#on?.slots.running.size ?? 0
  }

  /** Resolves when no task is running (now, or as soon as the running ones end). */
  onIdle(): Promise<void> {
    return this.#on ? this.#on.slots.onIdle() : Promise.resolve()
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
    const on = this.#on!
    this.#state = 'stopping'
    const upkeepStopped = on.upkeep.stop()
    this.#done.push(...on.slots.release())
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
    if (timedOut) this.#done.push(...on.slots.handBack())
    on.leases.stop()
    on.progress.close()
    on.unsubscribe()
    this.#state = 'stopped'
    this.#wakeLoop()
    await this.#loop
    // A handover popped as the loop ended is released here rather than left to lapse.
    if (this.#done.length > 0) {
      const late = this.#done
      this.#done = []
      await on.backend.exchange(this.#broker.name, this.id, late, 0).catch(() => undefined)
    }
    await this.#executor.close()
    await upkeepStopped
    await on.backend.unregisterWorker(this.#broker.name, this.id).catch(() => undefined)
  }

  /** Stops everything at once: the backend is gone. */
  #halt(): void {
    const on = this.#on!
    void on.upkeep.stop()
    on.leases.stop()
    on.progress.close()
    on.unsubscribe()
    on.slots.clear()
    this.#state = 'stopped'
  }

  async #run(): Promise<void> {
    const { backend, slots } = this.#on!
    const queue = this.#broker.name
    let failures = 0
    while (this.#state !== 'stopped' || this.#done.length > 0) {
      slots.fill()
      const free = this.#state === 'running' ? slots.free() : 0
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
            ? { ms: Math.min(this.#blockTimeout, PARK_MS), slots: slots.startable() }
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
        if (!slots.takeLost(id)) this.emit('lease:lost', { id, queue })
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
    this.#waiting ??= this.#on!.backend.waitForWork(
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

  /** Takes reserved tasks: into the slots while running, released unrun when stopping. */
  #accept(tasks: readonly ReservedTask[]): void {
    if (tasks.length === 0) return
    if (this.#state === 'running') {
      this.#on!.slots.add(tasks)
      return
    }
    // Reserved while stopping: release it unrun rather than start what nobody will finish.
    for (const task of tasks)
      this.#done.push({ id: task.id, token: task.token, outcome: '', release: true })
    this.#wakeLoop()
  }

  #nextKick(): Promise<void> {
    return new Promise(resolve => (this.#kick = resolve))
  }

  #wakeLoop(): void {
    const kick = this.#kick
    this.#kick = undefined
    kick?.()
  }

  /** This worker's registration: what it exposes and what it runs now. */
  #info(): WorkerInfo {
    const running = this.#on?.slots.running
    return {
      id: this.id,
      hostname: hostname(),
      pid: process.pid,
      concurrency: this.#concurrency,
      running: running?.size ?? 0,
      startedAt: this.#startedAt,
      seenAt: Date.now(),
      names: [...(this.#executor.exposedNames?.() ?? this.#broker.exposed())],
      tasks: [...(running?.keys() ?? [])].slice(0, 100),
    }
  }
}

function delay(ms: number): Promise<void> {
  return new Promise(r => setTimeout(r, ms))
}
