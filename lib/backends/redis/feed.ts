/**
 * Outcome delivery: one subscriber connection per backend instance, subscribed to this instance's
 * channel. The finish scripts publish every outcome of a task enqueued here (batched per call).
 * After a reconnect the subscription is renewed, then `onGap` tells the caller to re-check.
 */
import type { Redis } from 'ioredis'
import type { OutcomeListener } from '../backend.js'
import { decodeOutcomes } from './codec.js'

/** The subscriber side of outcome delivery. */
export class OutcomeFeed {
  readonly #open: () => Redis
  readonly #channel: string
  readonly #listeners: OutcomeListener[] = []
  readonly #gaps: Array<() => void> = []
  #sub: Redis | undefined
  #subscribed: Promise<void> | undefined

  constructor(open: () => Redis, channel: string) {
    this.#open = open
    this.#channel = channel
  }

  /** Adds a listener; resolves once the SUBSCRIBE is confirmed. */
  listen(listener: OutcomeListener, onGap: () => void): Promise<void> {
    this.#listeners.push(listener)
    this.#gaps.push(onGap)
    this.#subscribed ??= this.#subscribe()
    return this.#subscribed
  }

  async #subscribe(): Promise<void> {
    const sub = (this.#sub = this.#open())
    let connected = false
    sub.on('message', (_channel: string, message: string) => this.#deliver(message))
    sub.on('ready', () => {
      if (!connected) {
        connected = true
        return
      }
      // Outcomes published while we were away are lost: renew, then let the caller re-check.
      void sub
        .subscribe(this.#channel)
        .then(() => this.gap())
        .catch(() => undefined)
    })
    await sub.subscribe(this.#channel)
  }

  #deliver(message: string): void {
    let flat: string[]
    try {
      flat = decodeOutcomes(message)
    } catch {
      return
    }
    this.deliver(flat)
  }

  /** True once a listener was added: outcomes of this instance's tasks have somewhere to go. */
  get listening(): boolean {
    return this.#listeners.length > 0
  }

  /**
   * Hands outcomes (queue, id, outcome, queue, id, outcome, …) to the listeners: those of a
   * published message, and those a script returned to this instance instead of publishing them.
   */
  deliver(flat: readonly string[]): void {
    for (let i = 0; i + 2 < flat.length; i += 3)
      for (const listener of this.#listeners) listener(flat[i]!, flat[i + 1]!, flat[i + 2]!)
  }

  /**
   * Tells the listeners to re-check what they wait for: a script call whose reply was lost may
   * have ended tasks whose outcomes came back in that reply.
   */
  gap(): void {
    for (const gap of this.#gaps) gap()
  }

  /** The subscriber connection, once made (for tests). */
  get connection(): Redis | undefined {
    return this.#sub
  }
}
