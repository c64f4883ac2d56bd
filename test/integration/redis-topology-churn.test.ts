/**
 * Connection churn behind Sentinel and on a Redis Cluster: connections killed on every node, a
 * master failed over or restarted, with brokers closed and pools stopped meanwhile and right after
 * getBroker. Nothing may reject unhandled or throw uncaught (the root hooks fail the run).
 * `WORQ_CHURN_ROUNDS` loops it longer when hunting.
 */
import { getBroker } from '../../lib/index.js'
import { onNode } from '../helpers/redis-server.js'
import { startCluster, type RedisCluster } from '../helpers/redis-cluster.js'
import { startSentinels, type SentinelSet } from '../helpers/redis-sentinel.js'
import { uniqueQueue } from '../helpers/util.js'
import { busy, inFlight, ROUNDS } from '../helpers/churn.js'

/** Failovers take seconds each: run only when hunting (`WORQ_CHURN_ROUNDS` set). */
const hunting = process.env.WORQ_CHURN_ROUNDS === undefined ? it.skip : it

/** Kills every client connection on the servers on `ports` (sentinels: their own clients). */
async function killAll(ports: number[]): Promise<void> {
  await Promise.all(
    ports.map(p =>
      onNode(p, async c => {
        await c.client('KILL', 'TYPE', 'normal', 'SKIPME', 'yes')
        await c.client('KILL', 'TYPE', 'pubsub')
      }).catch(() => undefined),
    ),
  )
}

describe('redis: connection churn behind Sentinel never ends the process', function () {
  this.timeout(15_000)
  let set: SentinelSet
  before(async () => {
    set = await startSentinels()
  })
  after(() => set?.stop())

  for (let round = 0; round < ROUNDS; round++) {
    it(`closed right after every connection, to sentinels too, is killed (round ${round})`, async () => {
      const { broker, pool } = await busy(set.url, 10_000)
      const calls = inFlight(broker)
      await killAll([...set.data.map(d => d.port), ...set.sentinels])
      await Promise.all([pool.stop(), broker.close()])
      await calls
    })

    it(`closed right after its connections to the data nodes are killed (round ${round})`, async () => {
      const { broker, pool } = await busy(set.url, 10_000)
      const calls = inFlight(broker)
      await killAll(set.data.map(d => d.port))
      await Promise.all([pool.stop(), broker.close()])
      await calls
    })

    hunting(`closed during a failover (round ${round})`, async () => {
      const { broker, pool } = await busy(set.url, 10_000)
      const calls = inFlight(broker)
      const failing = set.failover()
      await set.masterChangedFrom(await set.master().catch(() => 0)).catch(() => undefined)
      await Promise.all([pool.stop(), broker.close()])
      await Promise.all([calls, failing])
    })

    it(`closed right after getBroker (round ${round})`, async () => {
      const broker = getBroker(set.url, uniqueQueue('churn'))
      const calls = Promise.allSettled([broker.queue().echo('never'), broker.size()])
      await broker.close()
      await calls
    })
  }
})

describe('redis: connection churn on a Cluster never ends the process', function () {
  this.timeout(15_000)
  let cluster: RedisCluster
  before(async () => {
    cluster = await startCluster()
  })
  after(() => cluster?.stop())

  for (let round = 0; round < ROUNDS; round++) {
    it(`closed right after every connection is killed (round ${round})`, async () => {
      const { broker, pool } = await busy(cluster.url, 10_000)
      const calls = inFlight(broker)
      const masters = await cluster.masters()
      await killAll(masters.map(m => m.port))
      await Promise.all([pool.stop(), broker.close()])
      await calls
    })

    hunting(`closed while a master fails over (round ${round})`, async () => {
      const { broker, pool } = await busy(cluster.url, 10_000)
      const calls = inFlight(broker)
      const [master] = await cluster.masters()
      await master!.kill()
      await new Promise(resolve => setTimeout(resolve, 1000 * Math.random()))
      await Promise.all([pool.stop({ timeout: 0 }), broker.close()])
      await calls
      await master!.start()
      await cluster.settled()
    })

    it(`closed right after getBroker (round ${round})`, async () => {
      const broker = getBroker(cluster.url, uniqueQueue('churn'))
      const calls = Promise.allSettled([broker.queue().echo('never'), broker.size()])
      await broker.close()
      await calls
    })
  }
})
