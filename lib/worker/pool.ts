/**
 * WorkerPool: runs the functions a broker exposes, up to `concurrency` tasks at once, in this
 * process. Its lanes (lane.ts; one, or several at high concurrency) each finish what ended and
 * reserve what fits in one backend round trip (`exchange`), block on the backend when there is
 * nothing to do and renew their leases in one batch per heartrate. The pool hears the queue's
 * control messages (cancels, pause, schedules) for all of them, and through its upkeep takes part
 * in the sweep of lapsed leases and fires the queue's schedules. The runs live in slots.ts.
 */
import { hostname } from 'node:os'
import type { Backend, ControlMessage, WorkerInfo } from '../backends/backend.js'
import type { Broker } from '../broker.js'
import { ListenerError, TypedEmitter, type WorkerPoolEvents } from './events.js'
import type { Executor } from './executor.js'
import { Lane, type LaneHost } from './lane.js'
import {
  laneCount,
  laneIds,
  resolvePoolOptions,
  stopTimeout,
  type StopOptions,
  type WorkerPoolOptions,
} from './pool-options.js'
import { ProgressWriter } from './progress.js'
import { Upkeep } from './upkeep.js'

export type { StopOptions, WorkerPoolOptions }

/** What a started pool holds. */
interface Started {
  backend: Backend
  lanes: Lane[]
  progress: ProgressWriter
  upkeep: Upkeep
  unsubscribe: () => void
}

/** Runs exposed functions of one broker's queue in this process. */
export class WorkerPool extends TypedEmitter<WorkerPoolEvents> {
  /** This worker's id (its first lane's; lane n runs as `<id>/n`, see `lanes`). */
  readonly id: string
  readonly #broker: Broker
  readonly #concurrency: number
  readonly #prefetch: number
  readonly #lanes: number | undefined
  readonly #sweepInterval: number
  readonly #blockTimeout: number
  readonly #heartrate: number | undefined
  readonly #executor: Executor
  #on: Started | undefined
  #state: 'idle' | 'running' | 'stopping' | 'stopped' = 'idle'
  /** The queue is paused, as this pool last heard. */
  #paused = false
  #startedAt = 0
  #stopping: Promise<void> | undefined
  #hurry: (() => void) | undefined
  /** The start under way, if any: a stop() meanwhile waits for it. */
  #starting: Promise<void> | undefined
  /** stop() was called while start() ran: the lanes are not started, the pool stops once up. */
  #stopAsked = false

  constructor(broker: Broker, options: WorkerPoolOptions = {}) {
    super()
    const o = resolvePoolOptions(broker, options)
    this.#broker = broker
    this.id = o.id
    this.#concurrency = o.concurrency
    this.#prefetch = o.prefetch
    this.#lanes = o.lanes
    this.#sweepInterval = o.sweepInterval
    this.#blockTimeout = o.blockTimeout
    this.#heartrate = o.heartrate
    this.#executor = o.executor
    this.#executor.onError?.(err => this.emit('pool:error', err))
  }

  /**
   * A listener of this pool's events threw: reported as `pool:error` (a ListenerError). A
   * `pool:error` listener that throws on such a report is not told again, so that it cannot go on.
   */
  protected override listenerThrew(event: string, err: unknown, args: unknown[]): void {
    if (event === 'pool:error' && args[0] instanceof ListenerError) return
    this.emit('pool:error', new ListenerError(event, err))
  }

  /**
   * Starts taking tasks. Resolves once the backend is open. Starting twice throws. A start that
   * fails (the backend unreachable or full) undoes what it began and leaves the pool stopped:
   * `stop()` then resolves at once, and a new pool may be started. A `stop()` called while it
   * starts takes effect once it has started (no task is taken meanwhile).
   */
  async start(): Promise<void> {
    if (this.#state !== 'idle')
      throw new Error(`cannot start a WorkerPool that is ${this.#state}; create a new one`)
    this.#state = 'running'
    this.#starting = this.#start()
    try {
      await this.#starting
    } finally {
      this.#starting = undefined
    }
  }

  async #start(): Promise<void> {
    try {
      await this.#executor.start?.()
    } catch (err) {
      this.#state = 'stopped'
      throw err
    }
    try {
      await this.#begin()
    } catch (err) {
      await this.#undo()
      throw err
    }
  }

  /** Undoes a start that failed part way; the pool ends stopped. */
  async #undo(): Promise<void> {
    const on = this.#on
    this.#on = undefined
    this.#state = 'stopped'
    if (on) {
      await on.upkeep.stop()
      on.progress.close()
      on.unsubscribe()
      await this.#unregister(on)
    }
    await this.#executor.close()
  }

  /** What start() does once the executor runs: opens the backend and starts the lanes. */
  async #begin(): Promise<void> {
    const { backend } = await this.#broker.backend()
    const queue = this.#broker.name
    const error = (err: Error) => this.emit('pool:error', err)
    const progress = new ProgressWriter(backend, queue, error)
    const host = this.#laneHost(backend, progress)
    const ids = laneIds(this.id, laneCount(this.#lanes, this.#concurrency, backend.lanes))
    const lanes = ids.map(
      (id, i) =>
        new Lane(
          id,
          host,
          share(this.#concurrency, ids.length, i),
          share(this.#prefetch, ids.length, i),
        ),
    )
    for (const message of await backend.checks()) this.emit('pool:warning', { queue, message })
    this.#startedAt = Date.now()
    const unsubscribe = await backend.control(queue, m => this.#onControl(m))
    const upkeep = new Upkeep(backend, queue, this.#sweepInterval, {
      info: () => this.#info(),
      swept: count => this.emit('pool:swept', { queue, count }),
      error,
    })
    this.#on = { backend, lanes, progress, upkeep, unsubscribe }
    await upkeep.start()
    this.#paused = (await backend.settings(queue)).paused
    if (this.#paused) this.emit('pool:paused', { queue, paused: true })
    if (!this.#stopAsked) for (const lane of lanes) lane.start()
  }

  #laneHost(backend: Backend, progress: ProgressWriter): LaneHost {
    return {
      backend,
      queue: this.#broker.name,
      executor: this.#executor,
      progress,
      blockTimeout: this.#blockTimeout,
      heartrate: this.#heartrate,
      state: () => this.#state,
      halt: () => this.#halt(),
      emit: (event, ...args) => this.emit(event, ...args),
      listens: event => this.listens(event),
    }
  }

  /** What the queue's control messages ask of this pool. */
  #onControl(m: ControlMessage): void {
    const queue = this.#broker.name
    const lanes = this.#on?.lanes ?? []
    if (m.type === 'cancel') for (const lane of lanes) lane.slots.cancel(m.id)
    else if (m.type === 'paused') {
      this.#paused = true
      // What the pool holds ahead has not started: back in line, first, until the resume.
      if (this.#state === 'running') for (const lane of lanes) lane.finished(lane.slots.release())
      this.emit('pool:paused', { queue, paused: true })
    } else if (m.type === 'resumed') {
      this.#paused = false
      this.emit('pool:resumed', { queue, paused: false })
      for (const lane of lanes) lane.wake()
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

  /** The worker ids of the pool's lanes once it has started (docs/worker.md, "Lanes"); none before. */
  get lanes(): readonly string[] {
    return (this.#on?.lanes ?? []).map(lane => lane.id)
  }

  /**
   * True while the queue is paused, as this pool last heard (`pool:paused` and `pool:resumed` carry
   * the same flag): it starts nothing new until the resume.
   */
  get paused(): boolean {
    return this.#paused
  }

  /** Number of tasks running now. */
  get running(): number {
    let n = 0
    for (const lane of this.#on?.lanes ?? []) n += lane.slots.running.size
    return n
  }

  /** Resolves when no task is running (now, or as soon as the running ones end). */
  async onIdle(): Promise<void> {
    await Promise.all((this.#on?.lanes ?? []).map(lane => lane.slots.onIdle()))
  }

  /**
   * Stops taking work and lets running tasks finish within `timeout` (`Infinity`: however long they
   * take); tasks still running then are handed back for another attempt, or expired when none is
   * left. Idempotent. A `timeout` that is not a number of ms from 0 to 2^31 − 1 or `Infinity`
   * rejects with a TypeError.
   */
  async stop(options: StopOptions = {}): Promise<void> {
    const timeout = stopTimeout(options)
    if (this.#starting) {
      // Called while start() runs: stop once it has started (a start that failed left it stopped).
      this.#stopAsked = true
      await this.#starting.catch(() => undefined)
    }
    if (this.#state === 'idle') {
      this.#state = 'stopped'
      return
    }
    if (this.#state !== 'running') {
      if (timeout === 0) this.#hurry?.() // a second stop({ timeout: 0 }) hands back at once
      return (
        this.#stopping ?? Promise.all((this.#on?.lanes ?? []).map(l => l.ended())).then(() => {})
      )
    }
    this.#stopping = this.#stop(timeout)
    return this.#stopping
  }

  async #stop(timeout: number): Promise<void> {
    const on = this.#on!
    this.#state = 'stopping'
    const upkeepStopped = on.upkeep.stop()
    for (const lane of on.lanes) {
      lane.finished(lane.slots.release())
      lane.abort()
    }
    let timer: NodeJS.Timeout | undefined
    const timedOut = await Promise.race([
      this.onIdle().then(() => false),
      new Promise<boolean>(r => {
        this.#hurry = () => r(true)
        if (timeout !== Infinity) timer = setTimeout(() => r(true), timeout)
      }),
    ])
    clearTimeout(timer)
    if (timedOut) for (const lane of on.lanes) lane.finished(lane.slots.handBack())
    for (const lane of on.lanes) lane.leases.stop()
    on.progress.close()
    on.unsubscribe()
    this.#state = 'stopped'
    for (const lane of on.lanes) lane.wake()
    try {
      await Promise.all(on.lanes.map(lane => lane.ended()))
      // A handover popped as a loop ended is released here rather than left to lapse.
      await Promise.all(on.lanes.map(lane => lane.flushLate()))
    } finally {
      await this.#executor.close()
    }
    await upkeepStopped
    await this.#unregister(on)
  }

  /** Each lane leaves: its park goes, and what was handed to it and never popped goes back. */
  async #unregister(on: Started): Promise<void> {
    await Promise.all(
      on.lanes.map(lane =>
        on.backend.unregisterWorker(this.#broker.name, lane.id).catch(() => undefined),
      ),
    )
  }

  /**
   * Stops everything at once: the backend is gone (the broker was closed under the pool). Running
   * tasks are abandoned (nothing they return can be delivered), and the executor closes: a pool's
   * child processes end with it. A later stop() resolves once they have.
   */
  #halt(): void {
    const on = this.#on!
    if (this.#state === 'stopped') return
    for (const lane of on.lanes) {
      lane.leases.stop()
      lane.slots.clear()
    }
    // A stop under way goes on at once: there is nothing left to wait for.
    if (this.#state === 'stopping') {
      this.#hurry?.()
      return
    }
    const upkeepStopped = on.upkeep.stop()
    on.progress.close()
    on.unsubscribe()
    this.#state = 'stopped'
    for (const lane of on.lanes) lane.wake()
    this.#stopping = this.#halted(on, upkeepStopped)
  }

  /** After a halt: the lanes' loops end, then the executor closes. */
  async #halted(on: Started, upkeepStopped: Promise<void>): Promise<void> {
    try {
      await Promise.all(on.lanes.map(lane => lane.ended()))
    } finally {
      await this.#executor.close()
    }
    await upkeepStopped
  }

  /** This worker's registration: what it exposes and what it runs now. */
  #info(): WorkerInfo {
    const tasks: string[] = []
    for (const lane of this.#on?.lanes ?? []) tasks.push(...lane.slots.running.keys())
    return {
      id: this.id,
      hostname: hostname(),
      pid: process.pid,
      concurrency: this.#concurrency,
      running: tasks.length,
      startedAt: this.#startedAt,
      seenAt: Date.now(),
      names: [...(this.#executor.exposedNames?.() ?? this.#broker.exposed())],
      tasks: tasks.slice(0, 100),
    }
  }
}

/** Lane `i` of `n`'s part of `total` (the first lanes take what does not divide evenly). */
function share(total: number, n: number, i: number): number {
  return Math.floor(total / n) + (i < total % n ? 1 : 0)
}
