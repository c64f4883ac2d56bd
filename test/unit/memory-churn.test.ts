/**
 * Churn on memory://: brokers closed and pools stopped with calls, waits and event streams in
 * flight, and right after getBroker. memory:// has no connection to lose; what it shares with the
 * other backends is closing at awkward moments, and nothing may reject unhandled or throw uncaught
 * (the root hooks fail the run). `WORQ_CHURN_ROUNDS` loops it longer when hunting.
 */
import { expect } from 'chai'
import { getBroker, WorkerPool, type Deferred } from '../../lib/index.js'
import { uniqueQueue } from '../helpers/util.js'

const ROUNDS = Number(process.env.WORQ_CHURN_ROUNDS ?? 1)

describe('memory: closing at awkward moments never ends the process', () => {
  for (let round = 0; round < ROUNDS; round++) {
    it(`closed and stopped with calls, waits and an event stream in flight (round ${round})`, async () => {
      const broker = getBroker('memory://churn', uniqueQueue('churn'))
      broker.expose(async function slow(ms: number) {
        await new Promise(resolve => setTimeout(resolve, ms))
        return ms
      })
      const pool = new WorkerPool(broker, { concurrency: 2 })
      pool.on('pool:error', () => undefined)
      await pool.start()
      const events = broker.events()
      events.on('*', () => undefined)
      const q = broker.queue()
      const first = (await q.slow(1)) as Deferred<number>
      expect(await first.result(1000)).to.equal(1)
      const calls = Promise.allSettled(
        Array.from({ length: 8 }, async (_, i) => ((await q.slow(i * 5)) as Deferred).result(1000)),
      )
      await Promise.all([pool.stop({ timeout: 0 }), broker.close()])
      await calls
    })

    it(`closed right after getBroker (round ${round})`, async () => {
      const broker = getBroker('memory://churn', uniqueQueue('churn'))
      const calls = Promise.allSettled([broker.queue().slow(1), broker.size()])
      await broker.close()
      await calls
      const pool = new WorkerPool(getBroker('memory://churn', uniqueQueue('churn')))
      const starting = pool.start()
      await pool.stop()
      await starting.catch(() => undefined)
    })
  }
})
