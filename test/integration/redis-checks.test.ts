import { expect } from 'chai'
import { Redis } from 'ioredis'
import { getBroker, WorkerPool } from '../../lib/index.js'
import { redisUrl } from '../helpers/redis-server.js'
import { uniqueQueue } from '../helpers/util.js'

describe('redis: start-up checks', () => {
  it('a pool on a Redis that evicts keys warns, naming the policy and the fix', async () => {
    const url = await redisUrl()
    const admin = new Redis(url)
    const broker = getBroker(url, uniqueQueue())
    const warnings: string[] = []
    const pool = new WorkerPool(broker)
    pool.on('pool:warning', e => warnings.push(e.message))
    try {
      await admin.config('SET', 'maxmemory-policy', 'allkeys-lru')
      await pool.start()
      expect(warnings).to.have.length(1)
      expect(warnings[0]).to.match(/maxmemory-policy is "allkeys-lru".*loses tasks.*noeviction/)
    } finally {
      await admin.config('SET', 'maxmemory-policy', 'noeviction')
      admin.disconnect()
      await pool.stop()
      await broker.close()
    }
  })

  it('a pool on a noeviction Redis does not warn', async () => {
    const broker = getBroker(await redisUrl(), uniqueQueue())
    const pool = new WorkerPool(broker)
    let warned = false
    pool.on('pool:warning', () => (warned = true))
    try {
      await pool.start()
      expect(warned).to.equal(false)
    } finally {
      await pool.stop()
      await broker.close()
    }
  })
})
