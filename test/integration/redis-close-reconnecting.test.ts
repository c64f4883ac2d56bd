/**
 * A connection closed while ioredis waits to reconnect it (status `reconnecting`): ioredis's
 * `disconnect()` then only clears its reconnect timer, and the connection stayed `reconnecting`
 * for good, with the commands it was to send again unsettled. A pool stopping behind Sentinel
 * waited for such a command (its exchange) forever once its broker had closed.
 */
import { expect } from 'chai'
import type { Redis } from 'ioredis'
import { connect, disconnect } from '../../lib/backends/redis/connections.js'
import { parseTopology } from '../../lib/backends/redis/topology.js'
import { usePrivateRedis } from '../helpers/redis-server.js'

describe('redis: a connection closed while it waits to reconnect', () => {
  const ctx = usePrivateRedis()

  it('ends, and the command it was to send again fails', async () => {
    const topology = parseTopology(ctx.server.url)
    if (topology.kind === 'cluster') throw new Error('expected a single server')
    // A reconnect that waits long enough to close the connection meanwhile.
    topology.options.retryStrategy = () => 60_000
    const redis = connect(topology, 'block') as Redis
    try {
      await redis.ping()
      const name = `worq-closed-reconnecting-${Date.now()}`
      const pending = redis.blpop(name, 5).then(
        () => 'answered',
        (err: Error) => err.message,
      )
      const reconnecting = new Promise(resolve => redis.once('reconnecting', resolve))
      await ctx.admin.client('KILL', 'TYPE', 'normal', 'SKIPME', 'yes')
      await reconnecting
      await disconnect(redis, false)
      const settled = await Promise.race([
        pending,
        new Promise(resolve => setTimeout(() => resolve('still waiting'), 1000)),
      ])
      expect(settled).to.equal('Connection is closed.')
      expect(redis.status).to.equal('end')
    } finally {
      redis.disconnect()
    }
  })
})
