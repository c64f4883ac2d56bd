/**
 * The outcome listeners of a postgres:// backend instance (its process's result hub): what the
 * LISTEN connection hears for this instance goes to them, read from the task's row when it was too
 * big to notify, and after the connection was lost, what it missed (redeliver.ts) before they are
 * told of the gap.
 */
import type { OutcomeListener } from '../backend.js'
import type { PgPool } from './pool.js'
import type { TaskRow } from './reads.js'
import { missedOutcomes } from './redeliver.js'

export class OutcomeListeners {
  readonly #listeners: Array<{ listener: OutcomeListener; onGap: () => void }> = []

  constructor(
    private readonly db: PgPool,
    private readonly schema: string,
    private readonly origin: string,
    /** The task's row, unless it has ended past its resultTimeout. */
    private readonly row: (queue: string, id: string) => Promise<TaskRow | undefined>,
  ) {}

  /** Adds one (listening again after the server was away adds nothing twice). */
  add(listener: OutcomeListener, onGap: () => void): void {
    if (!this.#listeners.some(o => o.listener === listener))
      this.#listeners.push({ listener, onGap })
  }

  /** An outcome notified for this instance: inline, or only its kind when too big to notify. */
  async deliver(queue: string, id: string, what: string): Promise<void> {
    let outcome = what
    if (what.length === 1) {
      const row = await this.row(queue, id).catch(() => undefined)
      if (!row) return
      if (what === 'p') {
        if (row.progress === null) return
        outcome = 'p' + row.progress
      } else {
        if (row.outcome === null) return
        outcome = (what === 'C' ? 'C' : row.outcome.charAt(0)) + row.outcome.slice(1)
      }
    }
    for (const o of this.#listeners) o.listener(queue, id, outcome)
  }

  /** The LISTEN connection is back after `lostMs`: what it missed is delivered, then re-checked. */
  async gap(lostMs: number): Promise<void> {
    if (this.#listeners.length > 0) {
      const missed = await missedOutcomes(this.db, this.schema, this.origin, lostMs).catch(() => [])
      for (const m of missed) for (const o of this.#listeners) o.listener(m.queue, m.id, m.outcome)
    }
    for (const o of this.#listeners) o.onGap()
  }
}
