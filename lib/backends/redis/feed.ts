/**
 * The subscriber side of a Redis backend: one subscriber connection per backend instance. It
 * carries outcome and progress delivery (the instance's own channel, which the scripts publish
 * every outcome of a task enqueued here to, batched per call) and the control channels of queues
 * whose workers run here (cancels, pause and resume, schedule changes). After a reconnect every
 * subscription is renewed, then `onGap` tells outcome listeners to re-check.
 */
import type { Cluster } from 'ioredis'
import type { Connection as Redis } from './connections.js'
import type { OutcomeListener } from '../backend.js'
import { decodeOutcomes } from './codec.js'

/** The subscriber side of outcome delivery and control messages. */
export class OutcomeFeed {
  readonly #open: () => Redis
  readonly #channel: string
  readonly #listeners: OutcomeListener[] = []
  readonly #gaps: Array<() => void> = []
  /** Control channels and their listeners. */
  readonly #control = new Map<string, Set<(message: string) => void>>()
  #sub: Redis | undefined
  #subscribed: Promise<void> | undefined
  /** Publishes on the command connection (the probes that tell a cluster subscription works). */
  readonly #publish: (channel: string, message: string) => Promise<unknown>
  /** The probe in flight: its message, and what to do when it comes back. */
  #probe: { message: string; back: () => void } | undefined

  constructor(
    open: () => Redis,
    channel: string,
    publish: (channel: string, message: string) => Promise<unknown>,
  ) {
    this.#open = open
    this.#channel = channel
    this.#publish = publish
  }

  /** Adds a listener; resolves once the SUBSCRIBE is confirmed. */
  listen(listener: OutcomeListener, onGap: () => void): Promise<void> {
    // Listening again after a SUBSCRIBE that failed (the server away) adds nothing twice.
    if (!this.#listeners.includes(listener)) this.#listeners.push(listener)
    if (!this.#gaps.includes(onGap)) this.#gaps.push(onGap)
    return this.#connection().then(sub => sub.subscribe(this.#channel).then(() => undefined))
  }

  /**
   * Subscribes `listener` to a control channel; resolves, once subscribed, with a function that
   * unsubscribes.
   */
  async control(channel: string, listener: (message: string) => void): Promise<() => void> {
    const sub = await this.#connection()
    let set = this.#control.get(channel)
    if (!set) {
      this.#control.set(channel, (set = new Set()))
      try {
        await sub.subscribe(channel)
      } catch (err) {
        // Not subscribed (the server away): the next listener subscribes again.
        if (this.#control.get(channel) === set && set.size === 0) this.#control.delete(channel)
        throw err
      }
    }
    set.add(listener)
    return () => {
      set.delete(listener)
      if (set.size === 0 && this.#control.get(channel) === set) {
        this.#control.delete(channel)
        void sub.unsubscribe(channel).catch(() => undefined)
      }
    }
  }

  #connection(): Promise<Redis> {
    this.#subscribed ??= this.#connect()
    return this.#subscribed.then(() => this.#sub!)
  }

  async #connect(): Promise<void> {
    const sub = (this.#sub = this.#open())
    if (sub.isCluster) this.#watchCluster(sub as Cluster)
    let connected = false
    sub.on('message', (channel: string, message: string) => {
      if (channel === this.#channel) {
        if (message === this.#probe?.message) return this.#probe.back()
        return this.#deliver(message)
      }
      const set = this.#control.get(channel)
      if (set) for (const l of [...set]) l(message)
    })
    sub.on('ready', () => {
      if (!connected) {
        connected = true
        return
      }
      // Messages published while we were away are lost: renew, then let the callers re-check (an
      // empty control message says so).
      const channels = [...this.#control.keys()]
      if (this.#listeners.length > 0) channels.push(this.#channel)
      if (channels.length === 0) return
      void sub
        .subscribe(...channels)
        .then(() => {
          this.gap()
          for (const set of [...this.#control.values()]) for (const l of [...set]) l('')
        })
        .catch(() => undefined)
    })
  }

  /**
   * On a cluster, ioredis moves the subscription to another node by itself when the node it was
   * on fails, and says nothing: messages published meanwhile are lost. After a node error, probe
   * messages go out on the instance's own channel until one comes back (the subscription works
   * again); then waiters re-check.
   */
  #watchCluster(sub: Cluster): void {
    let pending = false
    const probe = async () => {
      if (pending) return
      pending = true
      try {
        for (let round = 0; round < 60 && this.#listeners.length > 0; round++) {
          const message = `probe:${Math.random()}`
          const back = new Promise<boolean>(resolve => {
            this.#probe = { message, back: () => resolve(true) }
            setTimeout(() => resolve(false), 1000).unref()
          })
          await this.#publish(this.#channel, message).catch(() => undefined)
          if (await back) {
            this.gap()
            return
          }
        }
      } finally {
        this.#probe = undefined
        pending = false
      }
    }
    sub.on('node error', () => void probe())
    sub.on('-node', () => void probe())
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
