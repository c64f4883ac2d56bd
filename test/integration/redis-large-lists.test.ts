import { expect } from 'chai'
import { getBroker, task, WorkerPool } from '../../lib/index.js'
import { useRedisAdmin } from '../helpers/redis-server.js'
import { uniqueQueue } from '../helpers/util.js'

// The Lua in Redis hands at most about 8 000 values to one command (`unpack`); lists that grow
// with a queue go in pieces (docs/redis.md, "Scripts"). test/contract/large.test.ts covers purge,
// cascades, listing and readying on every backend; this is the Redis case that needs thousands of
// cached results, which only Redis runs fast enough for the suite.
describe('redis: commands over lists longer than Lua can unpack', function () {
  this.timeout(60_000)
  const redis = useRedisAdmin()

  it('a cacheSize cut by 9 000 entries evicts them in one call', async () => {
    const broker = getBroker(redis.url, uniqueQueue('large-cache'))
    broker.expose(function id(x: number) {
      return x
    })
    const pool = new WorkerPool(broker, { concurrency: 50 })
    await pool.start()
    try {
      const q = broker.queue()
      const n = 9_010
      const ds = await Promise.all(
        Array.from({ length: n }, (_, i) => task(q.id, { cache: true })(i)),
      )
      await Promise.all(ds.map(d => d.result(30_000)))
      expect(await broker.cache.size()).to.equal(n)
      await broker.cache.configure({ size: 10 })
      expect(await broker.cache.size()).to.equal(10)
      // The 10 kept are the most recently used: the last calls hit them.
      const again = (await task(q.id, { cache: true })(n - 1))!
      await again.wait(5000)
      expect((await again.info())?.cached).to.equal(true)
    } finally {
      await pool.stop()
      await broker.purge()
      await broker.close()
    }
  })
})
