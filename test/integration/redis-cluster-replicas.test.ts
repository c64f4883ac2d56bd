/**
 * `replicas: 1` on a Redis Cluster while the queue's slot moves: each call is a pipeline of the
 * script and its `WAIT`, which ioredis does not redirect (the `WAIT` succeeded), so worq follows
 * the cluster's MOVED, ASK and TRYAGAIN itself. A cluster of its own: the test moves a slot.
 */
import { expect } from 'chai'
import calculateSlot from 'cluster-key-slot'
import { getBroker, task, WorkerPool, type Broker } from '../../lib/index.js'
import { startCluster, type ClusterNode, type RedisCluster } from '../helpers/redis-cluster.js'
import { hasBinary } from '../helpers/redis-server.js'
import { uniqueQueue, until } from '../helpers/util.js'

describe('redis cluster: replicas: 1 while the queue’s slot moves', function () {
  this.timeout(60_000)
  let cluster: RedisCluster
  before(async function () {
    // Skipped only without redis-server on PATH: no cluster can be started then, and
    // test/helpers/backends.ts reports that as a visible skip with the command to install it.
    if (!hasBinary()) this.skip() // reason: redis-server is not installed
    cluster = await startCluster()
    // `replicas: 1` needs each master's replica linked and in sync first.
    await cluster.replicasOnline()
  })
  after(() => cluster?.stop())

  const idOf = async (node: ClusterNode) => {
    const r = node.connect()
    try {
      return (await r.cluster('MYID')) as unknown as string
    } finally {
      r.disconnect()
    }
  }
  const onNode = async <T>(
    node: ClusterNode,
    fn: (r: ReturnType<ClusterNode['connect']>) => Promise<T>,
  ) => {
    const r = node.connect()
    try {
      return await fn(r)
    } finally {
      r.disconnect()
    }
  }

  it('a call made while the slot migrates waits for it; an idle broker follows the MOVED after it', async () => {
    const queue = uniqueQueue('moving')
    const slot = calculateSlot(`worq:{${queue}}:conf`)
    const from = await cluster.ownerOf(slot)
    const to = (await cluster.masters()).find(m => m.port !== from.port)!
    const [fromId, toId] = [await idOf(from), await idOf(to)]
    const brokers: Broker[] = []
    const open = () => {
      const b = getBroker(cluster.url, queue, { replicas: 1 })
      brokers.push(b)
      return b
    }
    try {
      const moving = open()
      const idle = open()
      // Both have sent a call to the slot's first owner.
      await moving.queue().f(1)
      await idle.queue().f(2)

      await onNode(to, r => r.cluster('SETSLOT', slot, 'IMPORTING', fromId))
      await onNode(from, r => r.cluster('SETSLOT', slot, 'MIGRATING', toId))
      let settled = false
      const during = moving
        .queue()
        .f(3)
        .finally(() => (settled = true))
      await new Promise(r => setTimeout(r, 400)) // the call keeps waiting: time is under test
      expect(settled, 'confirmed while the slot was split between two nodes').to.equal(false)

      // Move the slot's keys, then give it to its new owner everywhere.
      await onNode(from, async r => {
        const keys = (await r.cluster('GETKEYSINSLOT', slot, 1000)) as unknown as string[]
        if (keys.length > 0) await r.migrate('127.0.0.1', to.port, '', 0, 5000, 'KEYS', ...keys)
      })
      for (const node of [to, from, ...(await cluster.masters())])
        await onNode(node, r => r.cluster('SETSLOT', slot, 'NODE', toId))
      await cluster.settled()

      const d = await during
      expect(d?.id).to.be.a('string')
      // The idle broker still has the old owner in its map: its next call is answered MOVED,
      // which it follows at once (ioredis would only learn of the move at its next refresh).
      const t0 = Date.now()
      expect((await idle.queue().f(4))?.id).to.be.a('string')
      expect(Date.now() - t0).to.be.below(2_000)
      expect((await cluster.ownerOf(slot)).port).to.equal(to.port)
      expect(await onNode(to, r => r.exists(`worq:{${queue}}:t:${d!.id}`))).to.equal(1)
    } finally {
      await Promise.all(brokers.map(b => b.close()))
    }
  })

  it('a Deferred graph across masters: both steps of each hand-over are confirmed by WAIT', async () => {
    // Two queues whose slots live on different masters.
    const onMaster = async (not?: number) => {
      for (;;) {
        const q = uniqueQueue('graph')
        const owner = await cluster.ownerOf(calculateSlot(`worq:{${q}}:conf`))
        if (owner.port !== not) return { q, owner }
      }
    }
    const a = await onMaster()
    const b = await onMaster(a.owner.port)
    const waits = (node: ClusterNode) =>
      onNode(node, async r => {
        const m = /cmdstat_wait:calls=(\d+)/.exec(await r.info('commandstats'))
        return Number(m?.[1] ?? 0)
      })
    const brokers = [a.q, b.q].map(q => getBroker(cluster.url, q, { replicas: 1 }))
    const [ba, bb] = brokers as [Broker, Broker]
    ba.expose(function double(x: number) {
      return 2 * x
    })
    bb.expose(function add(x: number, y: number) {
      return x + y
    })
    // Only a's queue has a worker at first: b's master then sees no exchange, only the
    // dependent's enqueue and the fill of its argument's value.
    const pools = brokers.map(br => new WorkerPool(br, { concurrency: 2 }))
    try {
      await pools[0]!.start()
      const before = await waits(b.owner)
      const arg = await task(ba.queue().double, { delay: 300 })(21)
      // Registered on a's queue before it ends (link), filled on b's when it ends (fill).
      const dep = await bb.queue().add(arg, 0)
      await until(async () => (await dep.status()) === 'enqueued', 10_000, 'the fill')
      // The enqueue's WAIT and the fill's (without the fill's: one).
      expect((await waits(b.owner)) - before).to.be.at.least(2)
      await pools[1]!.start()
      expect(await dep.result(10_000)).to.equal(42)
      expect(await onNode(a.owner, r => r.hlen(`worq:{${a.q}}:ho`))).to.equal(0)
      expect(await onNode(b.owner, r => r.hlen(`worq:{${b.q}}:ho`))).to.equal(0)
    } finally {
      await Promise.all(pools.map(p => p.stop()))
      await Promise.all(brokers.map(br => br.close()))
    }
  })
})
