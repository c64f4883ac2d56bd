/**
 * The replies of the hot calls (enqueue.lua, exchange.lua) read back into their parts. Each comes
 * as one flat array with the lengths of its parts at its end: Redis turns every table of a reply
 * into RESP at a cost of its own (about 3 000 instructions), so the scripts send one.
 */
import type { EnqueueReply, ExchangeReply } from './script-types.js'

/**
 * enqueue.lua's reply for a call of `n` tasks: the codes, then mine, then owed, then the length of
 * mine.
 */
export function decodeEnqueueReply(flat: readonly unknown[], n: number): EnqueueReply {
  const end = flat.length - 1
  const mineEnd = n + (flat[end] as number)
  return [
    flat.slice(0, n) as number[],
    flat.slice(n, mineEnd) as string[],
    flat.slice(mineEnd, end) as string[],
  ]
}

/**
 * exchange.lua's reply: reserved, stale, mine, owed and texts, then the lengths of the last four
 * and nextDueIn.
 */
export function decodeExchangeReply(flat: readonly unknown[]): ExchangeReply {
  const end = flat.length - 5
  const [stale, mine, owed, texts] = flat.slice(end, end + 4) as [number, number, number, number]
  const textsAt = end - texts
  const owedAt = textsAt - owed
  const mineAt = owedAt - mine
  const staleAt = mineAt - stale
  return [
    flat.slice(staleAt, mineAt) as string[],
    flat.slice(0, staleAt),
    flat[end + 4] as number,
    flat.slice(mineAt, owedAt) as string[],
    flat.slice(owedAt, textsAt) as string[],
    flat.slice(textsAt, end) as string[],
  ]
}
