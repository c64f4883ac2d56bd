/**
 * The chaos suites' worker: a pool on a backend of its own (its own connections, as another process
 * would have) that runs `work(id, ms)`, counts runs per id and notes the leases it reports lost;
 * and the timings the suites run it with.
 */
import { getBroker, WorkerPool } from '../../lib/index.js'

/** The tasks' heartrate, ms. */
export const HEARTRATE = 100
/** The documented lease: 2 × heartrate + 1000 ms. */
export const LEASE = 2 * HEARTRATE + 1000
/** The pools' sweep interval, ms. */
export const SWEEP = 100
/** The pools' blocking read, ms. */
export const BLOCK_TIMEOUT = 500
/** Reconnecting and running a batch on a loaded 2-core machine. */
export const ALLOWANCE = 1000

/** How soon a connection that stopped answering is noticed. */
export interface Watchdog {
  blockMs: number
  pingMs: number
  marginMs: number
}

/** A worker pool on its own backend (its own connections, as another process would have). */
export function worker(
  url: string,
  queue: string,
  watchdog: Watchdog = { blockMs: 500, pingMs: 200, marginMs: 300 },
  pool: { concurrency?: number; prefetch?: number } = {},
) {
  const broker = getBroker(url, queue, { watchdog })
  const runs = new Map<string, number>()
  broker.expose(async function work(id: string, ms: number) {
    runs.set(id, (runs.get(id) ?? 0) + 1)
    await new Promise(r => setTimeout(r, ms))
    return id
  })
  const p = new WorkerPool(broker, {
    concurrency: 8,
    sweepInterval: SWEEP,
    blockTimeout: BLOCK_TIMEOUT,
    ...pool,
  })
  const lost: string[] = []
  p.on('lease:lost', e => lost.push(e.id))
  return { broker, pool: p, runs, lost }
}
