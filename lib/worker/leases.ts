/**
 * The lease keeper: renews the leases of all tasks a pool runs in one batched backend call per
 * heartrate (the smallest heartrate among the running tasks), and reports leases the backend says
 * were lost. With a worker heartrate (the pool's `heartrate`, `worq worker --heartrate`), a task
 * whose own heartrate is longer is renewed at the worker's instead (the lane cuts its lease by a
 * renewal before it starts: lane.ts).
 */
import type { Backend, Lease } from '../backends/backend.js'
import { timerMs } from './durations.js'

/** What the keeper reports. */
export interface LeaseHooks {
  /** The backend says this task's lease was lost (its token no longer matches, or it is gone). */
  lost(id: string): void
  /** A renewal failed (it is tried again at the next heartrate). */
  error(err: Error): void
}

export class LeaseKeeper {
  readonly #leases = new Map<string, Lease>()
  #timer: NodeJS.Timeout | undefined
  #every = Infinity
  #stopped = false

  /**
   * @param heartrate the worker's heartrate: the longest renewal period of any lease kept here
   *   (undefined: each task's own).
   */
  constructor(
    private readonly backend: Backend,
    private readonly queue: string,
    private readonly hooks: LeaseHooks,
    private readonly heartrate?: number,
  ) {}

  /** The lease to keep for a reserved task: its own heartrate, at most the worker's. */
  lease(task: Lease): Lease {
    const { id, token, heartrate } = task
    return { id, token, heartrate: Math.min(heartrate, this.heartrate ?? Infinity) }
  }

  /** Starts renewing a task's lease, at its heartrate or the worker's, whichever is shorter. */
  add(task: Lease): void {
    const lease = this.lease(task)
    this.#leases.set(lease.id, lease)
    if (lease.heartrate < this.#every) this.#schedule(lease.heartrate)
  }

  /** Stops renewing a lease. */
  delete(id: string): void {
    this.#leases.delete(id)
  }

  #schedule(every: number): void {
    if (this.#stopped) return
    clearTimeout(this.#timer)
    this.#every = every
    // A task stored by an earlier worq may carry a heartrate past what a timer can wait.
    this.#timer = setTimeout(() => void this.#renew(), timerMs(every))
  }

  async #renew(): Promise<void> {
    const leases = [...this.#leases.values()]
    if (leases.length === 0) {
      this.#every = Infinity
      return
    }
    let every = Infinity
    for (const lease of leases) if (lease.heartrate < every) every = lease.heartrate
    this.#schedule(every)
    try {
      const lost = await this.backend.renew(this.queue, leases)
      for (const id of lost) {
        if (this.#leases.delete(id)) this.hooks.lost(id)
      }
    } catch (err) {
      this.hooks.error(err as Error)
    }
  }

  /** Stops the timer (leases are left to lapse or be handed back by the pool). */
  stop(): void {
    this.#stopped = true
    clearTimeout(this.#timer)
  }
}
