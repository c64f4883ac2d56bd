/**
 * The Wakers of one Redis backend instance, one per worker of a queue that waits for work here
 * (waker.ts): made on a worker's first wait, each on a blocking connection of its own.
 */
import type { Connection as Redis } from './connections.js'
import { queueKey } from './keys.js'
import { Waker, type WakerTiming } from './waker.js'

/** The waker of one worker of one queue. */
const wakerKey = (queue: string, workerId: string) => `${queue}\n${workerId}`

/** The Wakers of the workers that wait here, by queue and worker. */
export class Wakers {
  readonly #open: () => Redis
  readonly #pushWake: (wake: string) => Promise<unknown>
  readonly #timing: WakerTiming
  readonly #wakers = new Map<string, Waker>()

  /**
   * `open` opens a blocking connection; `pushWake` pushes a wake marker back onto list `wake`
   * (one popped with nobody left waiting).
   */
  constructor(
    open: () => Redis,
    pushWake: (wake: string) => Promise<unknown>,
    timing: WakerTiming,
  ) {
    this.#open = open
    this.#pushWake = pushWake
    this.#timing = timing
  }

  /** Waits for work for `workerId` on `queue` (Waker.wait): a handover message, or nothing. */
  wait(
    queue: string,
    workerId: string,
    timeoutMs: number,
    signal?: AbortSignal,
  ): Promise<string | undefined> {
    const id = wakerKey(queue, workerId)
    let waker = this.#wakers.get(id)
    if (!waker) {
      const wake = queueKey(queue, 'wake')
      waker = new Waker(
        this.#open,
        { handover: queueKey(queue, `h:${workerId}`), wake },
        () => this.#pushWake(wake),
        this.#timing,
      )
      this.#wakers.set(id, waker)
    }
    return waker.wait(timeoutMs, signal)
  }

  /** True when `workerId`'s waker popped a wake marker since the last call (Waker.takeWoken). */
  woken(queue: string, workerId: string): boolean {
    return this.#wakers.get(wakerKey(queue, workerId))?.takeWoken() ?? false
  }

  /** Closes and forgets `workerId`'s waker; returns the handovers it popped that nobody took. */
  remove(queue: string, workerId: string): string[] {
    const key = wakerKey(queue, workerId)
    const waker = this.#wakers.get(key)
    this.#wakers.delete(key)
    waker?.close()
    return waker?.takeKept() ?? []
  }

  /** The blocking connections open now. */
  connections(): Redis[] {
    const all: Redis[] = []
    for (const w of this.#wakers.values()) if (w.connection) all.push(w.connection)
    return all
  }

  /** Closes every waker. */
  close(): void {
    for (const w of this.#wakers.values()) w.close()
  }
}
