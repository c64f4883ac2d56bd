/**
 * The worker side of one Redis backend instance: a pool's exchange of finished tasks for new ones
 * (exchange.lua), its blocking wait for work (wakers.ts: a handover brings tasks reserved for the
 * worker), and, when a worker leaves, the release of handovers it popped and never took.
 */
import { nanoid } from 'nanoid'
import type { BackendLimits, ExchangeResult, Finish, Park, ReservedTask } from '../backend.js'
import { decodeReserved, parseHandover } from './codec.js'
import { finishTimes, histogramFields } from './histograms.js'
import type { Connection } from './connections.js'
import type { OutcomeFeed } from './feed.js'
import type { HandOvers } from './handover.js'
import { Reservations } from './reservations.js'
import type { ExchangeReply, Scripts } from './scripts.js'
import { unconfirmedReply } from './lua-call.js'
import { decodeExchangeReply } from './replies.js'
import type { WakerTiming } from './waker.js'
import { Wakers } from './wakers.js'

/** What the worker side uses of its backend instance. */
export interface WorkParts {
  scripts: Scripts
  feed: OutcomeFeed
  handovers: HandOvers
  /** The instance's client id (its own tasks' outcomes come in replies while the feed listens). */
  clientId: string
  limits: BackendLimits
  /** Opens a blocking connection. */
  block: () => Connection
  /** Pushes a wake marker back onto list `wake`. */
  pushWake: (wake: string) => Promise<unknown>
  timing: WakerTiming
}

/** The exchanges and waits of the workers that run here. */
export class WorkerSide {
  readonly #scripts: Scripts
  readonly #feed: OutcomeFeed
  readonly #handovers: HandOvers
  readonly #clientId: string
  readonly #wakers: Wakers
  readonly #reservations: Reservations
  /**
   * `queue\nid` of finishes an unconfirmed exchange applied (`replicas`: its WAIT fell short), sent
   * again until an exchange is confirmed. A resent finish of an ignoreResult task finds no outcome
   * to recognise it by and comes back stale; this says it was not.
   */
  readonly #resent = new Set<string>()

  constructor(parts: WorkParts) {
    this.#scripts = parts.scripts
    this.#feed = parts.feed
    this.#handovers = parts.handovers
    this.#clientId = parts.clientId
    this.#wakers = new Wakers(parts.block, parts.pushWake, parts.timing)
    this.#reservations = new Reservations(parts.limits)
  }

  /** Backend.exchange: finishes `done` and reserves up to `max` tasks for `workerId`. */
  async exchange(
    queue: string,
    workerId: string,
    done: readonly Finish[],
    max: number,
    park?: Park,
  ): Promise<ExchangeResult> {
    const finishes = this.#reservations.finishes(queue, done)
    const times = histogramFields(done)
    const woken = this.#wakers.woken(queue, workerId)
    const nonce = `${workerId}:${nanoid(8)}`
    // A listening instance takes its own tasks' outcomes in the reply: no PUBLISH, no hop through
    // the subscriber connection. A lost reply may have carried some: listeners re-check.
    const self = this.#feed.listening ? this.#clientId : ''
    let reply: ExchangeReply
    let unconfirmed: ExchangeResult['unconfirmed']
    try {
      reply = await this.#scripts.exchange(
        queue,
        nonce,
        max,
        woken,
        self,
        workerId,
        park,
        times,
        finishes,
        finishTimes(done),
      )
    } catch (err) {
      // Ran on the master, WAIT fell short: what it reserved holds there and runs (dropped, it would
      // lapse unrun); what it finished is sent again until an exchange is confirmed.
      const written = unconfirmedReply(err) as unknown[] | undefined
      if (written === undefined) {
        if (self && finishes.length > 0) this.#feed.gap()
        throw err
      }
      reply = decodeExchangeReply(written)
      unconfirmed = { error: err as Error, finishes: [] }
    }
    const [, flat, nextDue, mine, owed, texts] = reply
    if (mine.length > 0) this.#feed.deliver(mine)
    if (owed.length > 0) this.#handovers.start(queue, owed)
    const result: ExchangeResult = {
      stale: this.#resentStale(queue, done, reply[0], unconfirmed),
      reserved: decodeReserved(flat),
    }
    // Handovers taken from the worker's list, passed on as text (exchange.lua).
    for (const t of texts) result.reserved.push(...decodeReserved(parseHandover(t)))
    if (nextDue >= 0) result.nextDueIn = nextDue
    if (unconfirmed) result.unconfirmed = unconfirmed
    return result
  }

  /**
   * The stale ids of a reply, less the finishes an unconfirmed exchange applied before (sent again,
   * they are lost runs to nobody); fills `unconfirmed.finishes` and keeps #resent current.
   */
  #resentStale(
    queue: string,
    done: readonly Finish[],
    replied: string[],
    unconfirmed: ExchangeResult['unconfirmed'],
  ): string[] {
    const key = (id: string) => `${queue}\n${id}`
    const stale =
      this.#resent.size === 0 ? replied : replied.filter(id => !this.#resent.has(key(id)))
    if (unconfirmed) {
      const refused = new Set(stale)
      // Their times are counted already (metrics): sent again without them.
      unconfirmed.finishes = done
        .filter(f => !refused.has(f.id))
        .map(({ runMs: _r, waitMs: _w, ...f }) => f)
      for (const f of unconfirmed.finishes) this.#resent.add(key(f.id))
    } else if (this.#resent.size > 0) {
      for (const f of done) this.#resent.delete(key(f.id))
    }
    return stale
  }

  /** Backend.waitForWork: the tasks a handover brought, or none on a wake, timeout or abort. */
  async wait(
    queue: string,
    workerId: string,
    timeoutMs: number,
    signal?: AbortSignal,
  ): Promise<ReservedTask[]> {
    const handover = await this.#wakers.wait(queue, workerId, timeoutMs, signal)
    return handover === undefined ? [] : this.#reservations.handed(handover)
  }

  /** Closes `id`'s waker and releases the handovers it popped that nobody took. */
  async leave(queue: string, id: string): Promise<void> {
    // Handovers popped that nobody took, and those still in the list, go back first in line.
    const kept = this.#wakers.remove(queue, id).flatMap(m => this.#reservations.handed(m))
    if (kept.length > 0) {
      const releases = kept.map(t => ({ id: t.id, token: t.token, outcome: '', release: true }))
      await this.exchange(queue, id, releases, 0)
    }
  }

  /** The blocking connections open now. */
  connections(): Connection[] {
    return this.#wakers.connections()
  }

  /** Closes every waker. */
  close(): void {
    this.#wakers.close()
  }
}
