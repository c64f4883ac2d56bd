/**
 * The lease keeper: renews the leases of all tasks a pool runs in one batched backend call per
 * heartrate (the smallest heartrate among the running tasks), and reports leases the backend says
 * were lost.
 */
import type { Backend, Lease } from '../backends/backend.js'

export class LeaseKeeper {
  readonly #leases = new Map<string, Lease>()
  #timer: NodeJS.Timeout | undefined
  #every = Infinity
  #stopped = false

  constructor(
    private readonly backend: Backend,
    private readonly queue: string,
    private readonly onLost: (id: string) => void,
    private readonly onError: (err: Error) => void,
  ) {}

  /** Starts renewing a lease. */
  add(lease: Lease): void {
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
    this.#timer = setTimeout(() => void this.#renew(), every)
  }

  async #renew(): Promise<void> {
    const leases = [...this.#leases.values()]
    if (leases.length === 0) {
      this.#every = Infinity
      return
    }
    this.#schedule(Math.min(...leases.map(l => l.heartrate)))
    try {
      const lost = await this.backend.renew(this.queue, leases)
      for (const id of lost) {
        if (this.#leases.delete(id)) this.onLost(id)
      }
    } catch (err) {
      this.onError(err as Error)
    }
  }

  /** Stops the timer (leases are left to lapse or be handed back by the pool). */
  stop(): void {
    this.#stopped = true
    clearTimeout(this.#timer)
  }
}
