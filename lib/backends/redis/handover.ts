/**
 * Hand-overs between slots (docs/cluster.md): on a Redis Cluster a script keeps to its queue's
 * slot, so what a call owes another queue — registering a task as a dependent of a Deferred
 * argument there (`L`), or an ended task's outcome for a dependent there (`D`) — is recorded in the
 * owing queue (its `ho` hash, scripts/outbox.lua) and returned in the call's reply. This class does
 * the second step at once: link.lua on the argument's queue, fill.lua on the dependent's queue,
 * then fill.lua on the owing queue drops what is done. Every step is idempotent; a step that fails
 * (or a process that dies between the steps) leaves the record, and the owing queue's sweep does
 * it again after a grace of a second.
 */
import type { Fill, Link, Scripts } from './scripts.js'

/** Hands over what calls owe other queues; one per backend instance. */
export class HandOvers {
  readonly #scripts: Scripts
  readonly #now: boolean
  readonly #self: () => string
  readonly #deliver: (mine: string[]) => void
  readonly #running = new Set<Promise<void>>()

  /**
   * `now` false leaves every hand-over to the sweep (tests of a death between the steps). `self`:
   * the client id whose outcomes come back in replies ('' = published); `deliver` takes those
   * outcomes (queue, id, outcome, …).
   */
  constructor(
    scripts: Scripts,
    now: boolean,
    self: () => string,
    deliver: (mine: string[]) => void,
  ) {
    this.#scripts = scripts
    this.#now = now
    this.#self = self
    this.#deliver = deliver
  }

  /** Starts the hand-overs a call on `queue` owes (field, value, …); failures wait for the sweep. */
  start(queue: string, owed: readonly string[]): void {
    if (owed.length === 0 || !this.#now) return
    const run: Promise<void> = this.#run(queue, owed)
      .catch(() => undefined)
      .finally(() => this.#running.delete(run))
    this.#running.add(run)
  }

  /** Resolves when the hand-overs started so far (and those they started) are over. */
  async settled(): Promise<void> {
    while (this.#running.size > 0) await Promise.all([...this.#running])
  }

  async #run(queue: string, owed: readonly string[]): Promise<void> {
    const links = new Map<string, Array<{ link: Link; field: string }>>()
    const deliveries = new Map<string, Array<{ fill: Fill; field: string }>>()
    for (let i = 0; i + 1 < owed.length; i += 2) {
      const field = owed[i]!
      const value = owed[i + 1]!
      const f = field.split('\t')
      if (f[0] === 'L' && f.length === 3) {
        const [argQueue, argument, generation] = value.split('\t') as [string, string, string]
        const list = links.get(argQueue) ?? []
        list.push({ link: { queue, id: f[1]!, slot: f[2]!, generation, argument }, field })
        links.set(argQueue, list)
      } else if (f[0] === 'D' && f.length === 5) {
        const tab = value.indexOf('\t')
        const fill = {
          id: f[3]!,
          slot: f[4]!,
          generation: value.slice(0, tab),
          outcome: value.slice(tab + 1),
        }
        const list = deliveries.get(f[2]!) ?? []
        list.push({ fill, field })
        deliveries.set(f[2]!, list)
      }
    }
    const fills: Fill[] = []
    const done: string[] = []
    await Promise.all([
      ...[...links].map(async ([argQueue, list]) => {
        const outcomes = await this.#scripts.link(
          argQueue,
          list.map(l => l.link),
        )
        list.forEach(({ link, field }, j) => {
          const outcome = outcomes[j]
          if (outcome)
            fills.push({ id: link.id, slot: link.slot, generation: link.generation, outcome })
          done.push(field)
        })
      }),
      ...[...deliveries].map(async ([depQueue, list]) => {
        await this.#fill(
          depQueue,
          list.map(d => d.fill),
          [],
        )
        for (const d of list) done.push(d.field)
      }),
    ])
    await this.#fill(queue, fills, done)
  }

  /** fill.lua on `queue`; what its cascade owes is handed over in turn. */
  async #fill(queue: string, fills: Fill[], drop: string[]): Promise<void> {
    if (fills.length === 0 && drop.length === 0) return
    const [mine, owed] = await this.#scripts.fill(queue, this.#self(), fills, drop)
    if (mine.length > 0) this.#deliver(mine)
    this.start(queue, owed)
  }
}
