/**
 * A connection closed while ioredis renews it after a reconnect: ioredis sends SUBSCRIBE (its
 * autoResubscribe) and SELECT itself, with nobody to handle their rejection. Closed before their
 * replies, they must not reject unhandled, which ends a Node process.
 */
import { expect } from 'chai'
import { connect } from '../../lib/backends/redis/connections.js'
import { parseTopology } from '../../lib/backends/redis/topology.js'
import { silentProxy } from '../helpers/chaos-proxy.js'
import { usePrivateRedis } from '../helpers/redis-server.js'
import { unhandled } from '../helpers/util.js'

describe('redis: a connection closed while ioredis renews it', () => {
  const ctx = usePrivateRedis()

  for (const db of [0, 3]) {
    it(`a subscriber on db ${db}, closed while its renewed SUBSCRIBE waits, rejects nothing unhandled`, async () => {
      const proxy = await silentProxy(ctx.server.url)
      const url = proxy.url.replace(/\/0$/, `/${db}`)
      const sub = connect(parseTopology(url), 'sub')
      const channel = `worq-renewed-${db}-${Date.now()}`
      try {
        await sub.subscribe(channel)
        // Dropped by the server, the subscriber reconnects and ioredis renews its subscription
        // itself: the replies to that renewal never come back.
        const renewing = proxy.swallowRepliesAfter(channel)
        await ctx.admin.client('KILL', 'TYPE', 'pubsub')
        await renewing
        const rejected = unhandled(1000)
        sub.disconnect()
        expect(await rejected).to.equal(undefined)
      } finally {
        sub.disconnect()
        proxy.close()
      }
    })
  }
})
