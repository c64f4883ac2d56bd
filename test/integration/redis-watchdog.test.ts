import { expect } from 'chai'
import { storedBackoff } from '../../lib/backends/backend.js'
import { RedisBackend } from '../../lib/backends/redis/redis.js'
import { silentProxy } from '../helpers/chaos-proxy.js'
import { redisUrl } from '../helpers/redis-server.js'
import { uniqueQueue } from '../helpers/util.js'

describe('redis: blocking watchdog', () => {
  it('a BLPOP that goes silent is dropped and re-issued: the waiter still wakes on new work', async () => {
    const url = await redisUrl()
    const proxy = await silentProxy(url)
    const queue = uniqueQueue('dog')
    const timing = { blockMs: 200, marginMs: 200 }
    const worker = new RedisBackend(proxy.url, {
      maxPayloadBytes: 1 << 20,
      timing,
    })
    const client = new RedisBackend(url, { maxPayloadBytes: 1 << 20 })
    try {
      await worker.size(queue) // connected
      const woke = worker.waitForWork(queue, 'w', 30_000)
      await new Promise(r => setTimeout(r, 50)) // let the first BLPOP go out, then silence it
      proxy.freeze()
      const started = Date.now()
      await new Promise(r => setTimeout(r, timing.blockMs + timing.marginMs + 100))
      await client.enqueue(queue, [
        {
          id: 'x',
          name: 'f',
          payload: '[]',
          deps: [],
          onError: 'fail',
          ignoreResult: true,
          resultTimeout: 1000,
          heartrate: 1000,
          attempts: 1,
          backoff: storedBackoff(undefined),
          runAt: 0,
          timeout: 0,
          priority: 0,
          metadata: '',
          cache: undefined,
          trace: '',
        },
      ])
      await woke
      expect(Date.now() - started).to.be.below(5000)
      await client.purge(queue)
    } finally {
      proxy.close()
      await Promise.all([worker.close(), client.close()])
    }
  })
})
