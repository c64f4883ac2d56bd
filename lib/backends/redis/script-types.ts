/** What the Lua operations take and return, as the Scripts wrappers pass them. */

/** One task of an enqueue batch, as enqueue.lua takes it. */
export interface EnqueueEntry {
  id: string
  /** Epoch ms before which it must not run; 0 = now. */
  runAt: number
  /** The record: `E0:<header JSON>\n<payload>`, or `P0:…` for a task with Deferred arguments. */
  body: string
  /**
   * `<flags>|<heartrate>|<keep ms>|<client>|<generation>\n<name>|<enqueued>|<attempts>|<priority>`,
   * as in the header (keep 0, no client: ignoreResult); flags: s Deferred arguments, k cache,
   * m metadata, q a priority.
   */
  meta: string
}

/** One finish, as exchange.lua takes it. */
export interface FinishEntry {
  id: string
  token: string
  outcome: string
  /** Epoch ms to run again, or 'release': back first in line, the attempt uncounted. */
  retryAt?: number | 'release'
}

/**
 * What enqueue.lua returns, read back (replies.ts): a code per task, the caller's own outcomes, the
 * hand-overs owed.
 */
export type EnqueueReply = [number[], string[], string[]]

/**
 * What exchange.lua returns, read back (replies.ts): stale ids, reserved (flat), nextDueIn, mine,
 * owed, text handovers.
 */
export type ExchangeReply = [string[], unknown[], number, string[], string[], string[]]

/** A dependent on another queue to register on an argument task (link.lua). */
export interface Link {
  /** The dependent's queue and id. */
  queue: string
  id: string
  slot: string
  generation: string
  /** The argument task's id, on the queue link.lua runs on. */
  argument: string
}

/** An argument's outcome for a dependent's slot (fill.lua). */
export interface Fill {
  id: string
  slot: string
  generation: string
  outcome: string
}

/** What metrics.lua returns: the totals (flat) and minutes (minute, flat, …). */
export type MetricsReply = [string[], Array<number | string[]>]

/** What info.lua returns of a known task: record, tokens value, progress, due time. */
export type InfoReply = [string, string | false, string | false, string | false]

/** What list.lua returns: off, or matches (5 entries each), how many it skipped, where to go on. */
export type ListReply = ['off'] | [Array<string | false>, number, string | false]

/** One step of a listing (list.lua's arguments). */
export interface ListStep {
  /** Comma-separated statuses, '' for all. */
  statuses: string
  name: string
  /** Created before this time (epoch ms, exclusive), '' for no bound. */
  before: string
  /** Created after this time (epoch ms, exclusive), '' for no bound. */
  after: string
  skip: number
  want: number
  /** Where the last step stopped (its `next`), '' for the first step. */
  cursor: string
  budget: number
}
