import { expect } from 'chai'
import { getBroker, WorkerPool, type Broker, type Deferred } from '../../lib/index.js'
import { redisUrl } from '../helpers/redis-server.js'
import { latch, uniqueQueue } from '../helpers/util.js'

describe('redis: waking workers', () => {
  it('a burst wakes every idle worker process in turn (chained wake), none polls', async () => {
    const url = await redisUrl()
    const queue = uniqueQueue('wake')
    const gate = latch()
    // `redis: {}` gives each broker its own backend and connections, as separate processes have.
    const brokers: Broker[] = Array.from({ length: 3 }, () => getBroker(url, queue, { redis: {} }))
    const pools = brokers.map(b => {
      b.expose(async function hold(i: number) {
        await gate.promise
        return i
      })
      return new WorkerPool(b, { concurrency: 2, blockTimeout: 5000 })
    })
    const ran = new Map<WorkerPool, number>()
    const allStarted = latch()
    for (const p of pools)
      p.on('task:start', () => {
        ran.set(p, (ran.get(p) ?? 0) + 1)
        if ([...ran.values()].reduce((a, b) => a + b, 0) === 6) allStarted.resolve()
      })
    await Promise.all(pools.map(p => p.start()))
    const client = getBroker(url, queue)
    try {
      const q = client.queue()
      const all = (await Promise.all(Array.from({ length: 6 }, (_, i) => q.hold(i)))) as Array<
        Deferred<number>
      >
      // All six hold their worker until the gate opens: only every pool taking two gets them going.
      await allStarted.promise
      expect([...ran.values()]).to.deep.equal([2, 2, 2])
      gate.resolve()
      expect(await Promise.all(all.map(d => d.result(5000)))).to.deep.equal([0, 1, 2, 3, 4, 5])
    } finally {
      gate.resolve()
      await Promise.all(pools.map(p => p.stop()))
      await Promise.all([client, ...brokers].map(b => b.close()))
    }
  })
})
