import { expect } from 'chai'
import type { Redis } from 'ioredis'
import { getBroker, WorkerPool, type Deferred } from '../../lib/index.js'
import { queueKey } from '../../lib/backends/redis/keys.js'
import { hasBinary, helperRedis, useRedisAdmin } from '../helpers/redis-server.js'
import { sharedSentinels, type SentinelSet } from '../helpers/redis-sentinel.js'
import { latch, uniqueQueue, until } from '../helpers/util.js'

/** Ids of worq's connections (CLIENT SETNAME worq:<role>), by role. */
async function worqClients(admin: Redis): Promise<Array<{ id: string; name: string }>> {
  const list = (await admin.client('LIST')) as string
  return list
    .split('\n')
    .map(line => Object.fromEntries(line.split(' ').map(kv => kv.split('=') as [string, string])))
    .filter(c => c.name?.startsWith('worq:'))
    .map(c => ({ id: c.id!, name: c.name! }))
}

describe('redis: connections', () => {
  const redis = useRedisAdmin()

  it('10 000 outstanding Deferreds in one process use a constant number of connections', async () => {
    const queue = uniqueQueue('conn')
    const before = (await worqClients(redis.admin)).length
    const broker = getBroker(redis.url, queue)
    broker.expose(function add(a: number, b: number) {
      return a + b
    })
    const pool = new WorkerPool(broker, { concurrency: 50 })
    try {
      const q = broker.queue()
      const first = (await q.add(0, 0)) as Deferred<number>
      const opened = (await worqClients(redis.admin)).length - before
      expect(opened).to.equal(2) // commands + subscriber
      const all = (await Promise.all(
        Array.from({ length: 10_000 }, (_, i) => q.add(i, 1)),
      )) as Array<Deferred<number>>
      expect((await worqClients(redis.admin)).length - before).to.equal(opened)
      await pool.start()
      const values = await Promise.all(all.map(d => d.result(60_000)))
      expect(values[9_999]).to.equal(10_000)
      expect(await first.result(1000)).to.equal(0)
      // + at most the pool's blocking connections: one per lane, two at concurrency 50
      expect((await worqClients(redis.admin)).length - before).to.be.at.most(opened + 2)
    } finally {
      await pool.stop()
      await broker.close()
    }
    expect((await worqClients(redis.admin)).length).to.equal(before)
  })

  it('a worker whose connections are killed (CLIENT KILL) reconnects and goes on; waiters re-check', async () => {
    const queue = uniqueQueue('kill')
    const broker = getBroker(redis.url, queue)
    const gate = latch()
    broker.expose(async function gated() {
      await gate.promise
      return 'after the kill'
    })
    broker.expose(function echo(x: string) {
      return x
    })
    const pool = new WorkerPool(broker, { concurrency: 4 })
    const started = latch()
    pool.once('task:start', () => started.resolve())
    await pool.start()
    try {
      const q = broker.queue()
      const d = (await q.gated()) as Deferred<string>
      await started.promise
      const { hub } = await broker.backend()
      const epoch = hub.epoch
      // Wait until the pool is parked in BLPOP, then kill every worq connection.
      await until(async () => (await worqClients(redis.admin)).some(c => c.name === 'worq:block'))
      const victims = await worqClients(redis.admin)
      expect(victims.map(c => c.name).sort()).to.deep.equal(['worq:block', 'worq:cmd', 'worq:sub'])
      for (const c of victims) await redis.admin.client('KILL', 'ID', c.id)
      await until(() => hub.epoch > epoch, 5000, 'the subscriber to report a gap')
      gate.resolve()
      expect(await d.result(10_000)).to.equal('after the kill')
      const e = (await q.echo('next')) as Deferred<string>
      expect(await e.result(10_000)).to.equal('next')
    } finally {
      gate.resolve()
      await pool.stop()
      await broker.close()
    }
  })

  it('a pool whose subscriber missed a pause (its connection was down) learns it on reconnecting', async () => {
    const queue = uniqueQueue('resync')
    const broker = getBroker(redis.url, queue)
    const pool = new WorkerPool(broker)
    try {
      await pool.start()
      const paused = latch()
      pool.on('pool:paused', () => paused.resolve())
      // The pause as a lost message would leave it: stored, never heard.
      await redis.admin.hset(queueKey(queue, 'conf'), 'paused', '1')
      for (const c of await worqClients(redis.admin))
        if (c.name === 'worq:sub') await redis.admin.client('KILL', 'ID', c.id)
      await paused.promise
      const resumed = latch()
      pool.on('pool:resumed', () => resumed.resolve())
      await broker.resume()
      await resumed.promise
    } finally {
      await pool.stop()
      await broker.close()
    }
  })
})

describe('redis: connections through Sentinel', function () {
  this.timeout(60_000)

  /** Pub/sub clients on every sentinel of the set (ioredis's failover detectors subscribe there). */
  async function sentinelSubscribers(set: SentinelSet): Promise<number> {
    let n = 0
    for (const port of set.sentinels) {
      const r = helperRedis(port)
      try {
        const list = (await r.client('LIST')) as string
        n += list.split('\n').filter(l => /\bsub=[1-9]/.test(l)).length
      } finally {
        r.disconnect()
      }
    }
    return n
  }

  it('a closed broker leaves no connection on the sentinels (its failover detector goes too)', async function () {
    // Skipped on purpose: without redis-server no Sentinel set can be started here (backends.ts
    // reports it as a visible skip with its reason).
    if (!hasBinary()) this.skip() // reason: redis-server is not installed
    const set = await sharedSentinels()
    const before = await sentinelSubscribers(set)
    const broker = getBroker(set.url, uniqueQueue('sentinel-close'))
    const pool = new WorkerPool(broker, { concurrency: 2 })
    broker.expose(function add(a: number, b: number) {
      return a + b
    })
    await pool.start()
    expect(await (await broker.queue().add(1, 2)).result(10_000)).to.equal(3)
    await until(async () => (await sentinelSubscribers(set)) > before, 5_000, 'a failover detector')
    await pool.stop()
    await broker.close()
    await until(
      async () => (await sentinelSubscribers(set)) === before,
      5_000,
      'the failover detectors to unsubscribe',
    )
  })
})
