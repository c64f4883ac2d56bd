/**
 * Metrics on Redis (scripts/observe.lua): per-minute hashes `m:<minute>` and the totals `mt`, which
 * the sweep folds finished minutes into; metrics.lua reads both at once.
 */
import { TIME_BUCKETS_MS, type MinuteCounts } from '../backend.js'
import type { MetricsReply } from './scripts.js'

function countsOf(minute: number, flat: readonly string[]): MinuteCounts {
  const h: Record<string, number> = {}
  for (let i = 0; i + 1 < flat.length; i += 2) h[flat[i]!] = Number(flat[i + 1])
  const n = (f: string) => h[f] ?? 0
  const buckets = (p: string) =>
    Array.from({ length: TIME_BUCKETS_MS.length + 1 }, (_, b) => n(`${p}${b}`))
  return {
    minute,
    completed: n('c'),
    failed: n('f'),
    retried: n('r'),
    expired: n('x'),
    cancelled: n('k'),
    wait: buckets('w'),
    run: buckets('t'),
    waitSum: n('ws'),
    runSum: n('ts'),
  }
}

function add(into: MinuteCounts, m: MinuteCounts): void {
  into.completed += m.completed
  into.failed += m.failed
  into.retried += m.retried
  into.expired += m.expired
  into.cancelled += m.cancelled
  into.waitSum += m.waitSum
  into.runSum += m.runSum
  m.wait.forEach((c, i) => (into.wait[i]! += c))
  m.run.forEach((c, i) => (into.run[i]! += c))
}

/** The window's minutes and the totals (folded ones plus those not folded yet). */
export function readMetrics(
  reply: MetricsReply,
  minutes: number,
  now = Date.now(),
): { minutes: MinuteCounts[]; totals: MinuteCounts } {
  const [totalsFlat, flat] = reply
  const upto = Number(totalsFlat[totalsFlat.indexOf('upto') + 1] ?? Infinity)
  const totals = countsOf(0, totalsFlat)
  const from = now - (now % 60_000) - (minutes - 1) * 60_000
  const window: MinuteCounts[] = []
  for (let i = 0; i + 1 < flat.length; i += 2) {
    const m = countsOf(Number(flat[i]), flat[i + 1] as string[])
    if (m.minute >= upto) add(totals, m)
    if (m.minute >= from) window.push(m)
  }
  return { minutes: window, totals }
}
