/**
 * Blocking for work, for one worker of one queue: a loop of BLPOP on the worker's handover list
 * and the queue's wake list, on a connection of its own, bounded (≤ `blockMs` per call) and
 * watched: a BLPOP that has not returned `marginMs` after its timeout (a half-open socket, a
 * reconnect that lost it) drops that connection and the next round opens a new one, so no worker
 * stays blocked forever. A handover (tasks reserved for this worker by hand_over() in
 * scripts/ready.lua) goes to one waiter, or is kept for the next wait when nobody waits; a wake
 * marker popped with nobody left waiting is pushed back.
 */
import type { Connection as Redis } from './connections.js'

/** Timing of the blocking loop. */
export interface WakerTiming {
  /** Longest single BLPOP, ms. @default 5_000 */
  blockMs: number
  /** How long past its timeout a BLPOP may stay silent before its connection is dropped. @default 2_000 */
  marginMs: number
}

/** The blocking waiter of one queue. */
export class Waker {
  readonly #open: () => Redis
  readonly #handover: string
  readonly #wake: string
  readonly #pushBack: () => Promise<unknown>
  readonly #timing: WakerTiming
  readonly #waiters = new Set<(handover?: string) => void>()
  /** Handovers popped while nobody waited, oldest first. */
  #kept: string[] = []
  #conn: Redis | undefined
  #looping = false
  #woken = false
  #closed = false
  /** When the BLPOP in flight was sent (undefined: none is), and how to stop waiting for it. */
  #sentAt: number | undefined
  #giveUp: (() => void) | undefined
  /** One watchdog timer for the loop, not one per BLPOP (see #watch). */
  #watchdog: NodeJS.Timeout | undefined

  constructor(
    open: () => Redis,
    keys: { handover: string; wake: string },
    pushBack: () => Promise<unknown>,
    timing: WakerTiming,
  ) {
    this.#open = open
    this.#handover = keys.handover
    this.#wake = keys.wake
    this.#pushBack = pushBack
    this.#timing = timing
  }

  /**
   * Resolves with a handover message, or with nothing on a wake marker, after `timeoutMs`, on
   * abort or on close.
   */
  wait(timeoutMs: number, signal?: AbortSignal): Promise<string | undefined> {
    const kept = this.#kept.shift()
    if (kept !== undefined) return Promise.resolve(kept)
    if (this.#closed || signal?.aborted) return Promise.resolve(undefined)
    return new Promise(resolve => {
      const done = (handover?: string) => {
        clearTimeout(timer)
        signal?.removeEventListener('abort', abort)
        this.#waiters.delete(done)
        resolve(handover)
      }
      const abort = () => done()
      const timer = setTimeout(done, Math.max(0, timeoutMs))
      signal?.addEventListener('abort', abort, { once: true })
      this.#waiters.add(done)
      void this.#loop()
    })
  }

  /** True once after a marker was popped: the next exchange passes the wake on. */
  takeWoken(): boolean {
    const woken = this.#woken
    this.#woken = false
    return woken
  }

  /** Takes the handovers popped while nobody waited (to release them). */
  takeKept(): string[] {
    const kept = this.#kept
    this.#kept = []
    return kept
  }

  /** The blocking connection now in use (for tests). */
  get connection(): Redis | undefined {
    return this.#conn
  }

  async #loop(): Promise<void> {
    if (this.#looping) return
    this.#looping = true
    try {
      // Send the BLPOP after what this turn of the event loop still has to write: a worker that
      // just started a short task finishes it (one write, on the latency path) before it blocks.
      // Markers wait in the list meanwhile, so no wake is missed.
      await new Promise(resolve => setImmediate(resolve))
      while (this.#waiters.size > 0 && !this.#closed) {
        const popped = await this.#blpop()
        if (popped === 'error') await new Promise(r => setTimeout(r, 100))
        if (typeof popped === 'string') {
          const [first] = this.#waiters
          if (first) first(popped)
          else this.#kept.push(popped)
          continue
        }
        if (popped !== true) continue
        if (this.#waiters.size === 0) {
          await this.#pushBack().catch(() => undefined)
          continue
        }
        this.#woken = true
        for (const done of [...this.#waiters]) done()
      }
    } finally {
      this.#looping = false
    }
  }

  /** A handover message, true for a wake marker, false for a timeout, or 'error'. */
  async #blpop(): Promise<string | boolean | 'error'> {
    const conn = (this.#conn ??= this.#open())
    this.#sentAt = Date.now()
    this.#watch(this.#timing.blockMs + this.#timing.marginMs)
    try {
      const r = await new Promise<[string, string] | null | 'stuck'>((resolve, reject) => {
        this.#giveUp = () => resolve('stuck')
        conn.blpop(this.#handover, this.#wake, this.#timing.blockMs / 1000).then(resolve, reject)
      })
      if (r === null) return false
      if (r !== 'stuck') return r[0] === this.#handover ? r[1] : true
      if (this.#conn === conn) this.#conn = undefined
      conn.disconnect()
      return false
    } catch {
      return this.#closed ? false : 'error'
    } finally {
      this.#sentAt = undefined
      this.#giveUp = undefined
    }
  }

  /**
   * Gives up on a BLPOP still unanswered `blockMs + marginMs` after it was sent. One timer serves
   * the whole loop: when it fires it gives up on the BLPOP in flight if that one is overdue, else
   * waits again for the rest of that one's time (none in flight: it stops; the next BLPOP arms
   * it). Unref'd: a BLPOP in flight holds its socket, which keeps the process up anyway.
   */
  #watch(ms: number): void {
    if (this.#watchdog) return
    this.#watchdog = setTimeout(() => {
      this.#watchdog = undefined
      if (this.#sentAt === undefined) return
      const left = this.#sentAt + this.#timing.blockMs + this.#timing.marginMs - Date.now()
      if (left <= 0) this.#giveUp?.()
      else this.#watch(left)
    }, ms).unref()
  }

  /** Drops the connection and resolves every wait. */
  close(): void {
    this.#closed = true
    clearTimeout(this.#watchdog)
    this.#watchdog = undefined
    this.#conn?.disconnect()
    this.#conn = undefined
    for (const done of [...this.#waiters]) done()
  }
}
