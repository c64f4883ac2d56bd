import { expect } from 'chai'
import { getBroker } from '../../lib/index.js'
import { queueKey } from '../../lib/backends/redis/keys.js'
import { useRedisAdmin } from '../helpers/redis-server.js'
import { uniqueQueue } from '../helpers/util.js'

describe('redis: metrics totals', () => {
  const redis = useRedisAdmin()

  it('a metrics() read folds finished minutes into the totals, so none is lost when no pool runs', async () => {
    const queue = uniqueQueue('fold')
    const broker = getBroker(redis.url, queue)
    try {
      // A minute an hour ago that no sweep folded (no pool ran since), about to expire.
      const now = Date.now()
      const minute = now - (now % 60_000) - 3_600_000
      await redis.admin.hset(queueKey(queue, `m:${minute}`), 'z', '1', 'c', '5', 'f', '2')
      await redis.admin.pexpire(queueKey(queue, `m:${minute}`), 60_000)
      await redis.admin.hset(queueKey(queue, 'mt'), 'upto', String(minute))
      const read = await broker.metrics({ minutes: 5 })
      expect(read.totals).to.include({ completed: 5, failed: 2 })
      // Folded: the minute may go now, and the totals keep what it held.
      expect(Number(await redis.admin.hget(queueKey(queue, 'mt'), 'upto'))).to.be.above(minute)
      await redis.admin.del(queueKey(queue, `m:${minute}`))
      expect((await broker.metrics({ minutes: 5 })).totals).to.include({ completed: 5, failed: 2 })
    } finally {
      await redis.admin.del(queueKey(queue, 'mt'))
      await broker.close()
    }
  })
})
