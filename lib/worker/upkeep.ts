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
    this.#timer = setInterval(() => void this.#tick(), this.intervalMs)
    void this.#tick(false)
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

  /** Stops the tick and the scheduler. */
  stop(): void {
    clearInterval(this.#timer)
    this.scheduler.stop()
  }
}
