import { expect } from 'chai'
import type { Redis } from 'ioredis'
import { connect, disconnect } from '../../lib/backends/redis/connections.js'
import { parseTopology } from '../../lib/backends/redis/topology.js'
import { startSentinels, type SentinelSet } from '../helpers/redis-sentinel.js'

/** Resolves when `redis` next enters `status` (ioredis emits each status as an event). */
const entered = (redis: Redis, status: string): Promise<void> =>
  new Promise(resolve => redis.once(status, () => resolve()))

// ioredis ends a connection for good when its connector fails while the connection reconnects:
// behind Sentinel, a drop asked for while it is asking the sentinels for the master (its failover
// detector does that when a failover is announced; so did the watchdog) made every later command
// fail at once with "Connection is closed", in 2 of 9 runs of the chaos test of a killed master
// (test/chaos/cluster-faults.test.ts). A connection worq did not close comes back.
describe('redis: a connection behind Sentinel that ioredis ended comes back', function () {
  this.timeout(15_000)
  let set: SentinelSet
  before(async () => {
    set = await startSentinels()
  })
  after(async () => {
    await set?.stop()
  })

  for (const role of ['cmd', 'sub', 'block'] as const) {
    it(`${role}: dropped again while it asks the sentinels for the master, it reconnects and serves commands`, async () => {
      const redis = connect(parseTopology(set.url), role) as Redis
      try {
        await entered(redis, 'ready')
        // Dropped (as a failover announced by the sentinels drops it), then dropped again at the
        // moment it starts to reconnect, while it asks a sentinel where the master is.
        const connecting = entered(redis, 'connecting')
        redis.disconnect(true)
        await connecting
        const ended = entered(redis, 'end')
        redis.disconnect(true)
        await ended
        await entered(redis, 'ready')
        expect(redis.status).to.equal('ready')
        if (role === 'sub') expect(await redis.subscribe('worq:revive')).to.equal(1)
        else expect(await redis.ping()).to.equal('PONG')
      } finally {
        await disconnect(redis, true)
      }
    })
  }

  it('a connection closed by worq stays closed', async () => {
    const redis = connect(parseTopology(set.url), 'cmd') as Redis
    await entered(redis, 'ready')
    await disconnect(redis, true)
    // Nothing to wait on for a reopening that must not come: five times the first reopening's
    // delay (100 ms, reach.ts).
    await new Promise(r => setTimeout(r, 500))
    expect(redis.status).to.equal('end')
  })
})
