/**
 * The churn tests' load: a broker with a task, a started pool, an event stream and calls in flight,
 * so that every kind of connection is up (and busy) when a test cuts, kills or closes them.
 */
import { expect } from 'chai'
import { getBroker, WorkerPool, type Broker, type Deferred } from '../../lib/index.js'
import { uniqueQueue } from './util.js'

/** Calls made while the server is away give up soon. */
export const CHURN_OPTIONS = { connectTimeoutMs: 2000 }

/** Rounds of each churn case: 1, or `WORQ_CHURN_ROUNDS` when hunting. */
export const ROUNDS = Number(process.env.WORQ_CHURN_ROUNDS ?? 1)

/**
 * A broker with a task, a started pool and an event stream, and a first result delivered within
 * `firstMs` (every connection up).
 */
export async function busy(
  url: string,
  firstMs = 5000,
): Promise<{ broker: Broker; pool: WorkerPool }> {
  const broker = getBroker(url, uniqueQueue('churn'), CHURN_OPTIONS)
  broker.expose(async function echo(x: string) {
    return x
  })
  const pool = new WorkerPool(broker, { concurrency: 4, blockTimeout: 200, sweepInterval: 100 })
  pool.on('pool:error', () => undefined)
  await pool.start()
  // An event stream reads on a connection of its own (Redis: blocking reads).
  broker.events().on('*', () => undefined)
  const d = (await broker.queue().echo('up')) as Deferred<string>
  expect(await d.result(firstMs)).to.equal('up')
  return { broker, pool }
}

/** Calls that stay in flight (their results awaited, whatever they end as). */
export function inFlight(broker: Broker): Promise<unknown> {
  const q = broker.queue()
  return Promise.allSettled(
    Array.from({ length: 8 }, async (_, i) => ((await q.echo(`x${i}`)) as Deferred).result(2000)),
  )
}
