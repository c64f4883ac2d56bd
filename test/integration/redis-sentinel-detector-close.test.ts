/**
 * Behind Sentinel ioredis watches for failovers on connections of its own, one subscribed
 * connection per sentinel (its failover detector). When one of them reconnects, ioredis renews its
 * SUBSCRIBE (autoResubscribe) with nobody to handle the reply; closed before that reply, it must
 * not reject unhandled, which ends a Node process.
 */
import { expect } from 'chai'
import type { Redis } from 'ioredis'
import { connect } from '../../lib/backends/redis/connections.js'
import { parseTopology, type Topology } from '../../lib/backends/redis/topology.js'
import { silentProxy } from '../helpers/chaos-proxy.js'
import { onNode } from '../helpers/redis-server.js'
import { MASTER_NAME, startSentinels, type SentinelSet } from '../helpers/redis-sentinel.js'
import { unhandled } from '../helpers/util.js'

/** Resolves once the sentinel on `port` has a client subscribed to failover announcements. */
async function watched(port: number): Promise<void> {
  for (;;) {
    const list = await onNode(port, c => c.client('LIST') as Promise<string>)
    if (/ sub=1 /.test(list)) return
    await new Promise(resolve => setTimeout(resolve, 20))
  }
}

/** ioredis's internals (5.x) that hold the failover detector's connections. */
interface Detected {
  connector: { failoverDetector: { sentinels: Array<{ client: Redis }> } }
}

/**
 * The topology of the Sentinel set through the proxy at `url` (its only sentinel address; ioredis
 * learns the others from it), whose detector reconnects at once (ioredis: after a minute).
 */
function detected(url: string): Topology {
  const topology = parseTopology(`redis-sentinel://127.0.0.1:${new URL(url).port}/${MASTER_NAME}`)
  if (topology.kind === 'cluster') throw new Error('expected a Sentinel topology')
  topology.options.sentinelReconnectStrategy = () => 10
  return topology
}

describe('redis: a Sentinel failover detector closed while ioredis renews it', function () {
  this.timeout(30_000)
  let set: SentinelSet
  before(async () => {
    set = await startSentinels()
  })
  after(async () => {
    await set?.stop()
  })

  it('closed while its renewed SUBSCRIBE waits, it rejects nothing unhandled', async () => {
    const sentinel = set.sentinels[0]!
    const proxy = await silentProxy(`redis://127.0.0.1:${sentinel}/0`)
    const redis = connect(detected(proxy.url), 'cmd') as Redis
    try {
      await redis.ping()
      await watched(sentinel)
      // Dropped by the sentinel, the detector's connection reconnects and ioredis renews its
      // subscription itself: the replies to that renewal never come back.
      const renewing = proxy.swallowRepliesAfter('+switch-master')
      await onNode(sentinel, c => c.client('KILL', 'TYPE', 'pubsub'))
      await renewing
      const rejected = unhandled(1000)
      redis.disconnect()
      expect(await rejected).to.equal(undefined)
    } finally {
      redis.disconnect()
      proxy.close()
    }
  })

  it('a sentinel that goes away leaves its reconnects unprinted (no error event without listener)', async () => {
    const sentinel = set.sentinels[0]!
    const proxy = await silentProxy(`redis://127.0.0.1:${sentinel}/0`)
    const redis = connect(detected(proxy.url), 'cmd') as Redis
    const printed: unknown[] = []
    const print = console.error
    console.error = (...args: unknown[]) => printed.push(args)
    try {
      await redis.ping()
      await watched(sentinel)
      // The sentinel goes away: the detector's connection to it fails to reconnect, again and again.
      // Its second 'reconnecting' comes after a failed attempt (a listener of 'error' here would
      // itself keep ioredis from printing).
      const detector = (redis as unknown as Detected).connector.failoverDetector.sentinels[0]!
      const failed = new Promise<void>(resolve => {
        let n = 0
        detector.client.on('reconnecting', () => ++n === 2 && resolve())
      })
      proxy.close()
      await failed
      expect(printed).to.deep.equal([])
    } finally {
      console.error = print
      redis.disconnect()
      proxy.close()
    }
  })
})
