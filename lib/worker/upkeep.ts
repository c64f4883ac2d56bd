/**
 * A pool's periodic upkeep, every sweep interval: it refreshes the worker's registration (what it
 * exposes and runs), takes part in the guarded sweep of lapsed leases, and re-reads the schedules
 * (which its Scheduler fires).
 */
import type { Backend, WorkerInfo } from '../backends/backend.js'
import { Scheduler } from './scheduler.js'

export interface UpkeepHooks {
  /** The worker's registration as of now. */
  info(): WorkerInfo
  /** The sweep handled `count` tasks. */
  swept(count: number): void
  error(err: Error): void
}

export class Upkeep {
  readonly scheduler: Scheduler
  #timer: NodeJS.Timeout | undefined
  /** The tick under way, if any: stop() waits for it, so that nothing is written after it. */
  #ticking: Promise<void> | undefined

  constructor(
    private readonly backend: Backend,
    private readonly queue: string,
    private readonly intervalMs: number,
    private readonly hooks: UpkeepHooks,
  ) {
    this.scheduler = new Scheduler(backend, queue, err => hooks.error(err))
  }

  /** Registers the worker, then starts the periodic tick (whose first sweep runs at once). */
  async start(): Promise<void> {
    await this.register()
    this.#timer = setInterval(() => this.#run(), this.intervalMs)
    this.#run(false)
  }

  /** Runs a tick unless one is still under way (a slow backend skips a beat rather than piling up). */
  #run(register = true): void {
    if (this.#ticking) return
    this.#ticking = this.#tick(register)
      .catch(err => this.hooks.error(err as Error))
      .finally(() => (this.#ticking = undefined))
  }

  /** Records the worker as live for three sweep intervals. */
  register(): Promise<void> {
    return this.backend.registerWorker(this.queue, this.hooks.info(), 3 * this.intervalMs)
  }

  async #tick(register = true): Promise<void> {
    try {
      if (register) await this.register()
      const count = await this.backend.sweep(this.queue, this.intervalMs)
      if (count > 0) this.hooks.swept(count)
    } catch (err) {
      this.hooks.error(err as Error)
    }
    await this.scheduler.reload()
  }

  /**
   * Stops the tick and the scheduler; resolves once a tick under way has ended, so that a pool
   * unregistering after it is not registered again or swept after by its own last tick.
   */
  async stop(): Promise<void> {
    clearInterval(this.#timer)
    this.scheduler.stop()
    await this.#ticking
  }
}
