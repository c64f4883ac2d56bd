import { expect } from 'chai'
import type { Redis } from 'ioredis'
import { getBroker, WorkerPool, type Deferred } from '../../lib/index.js'
import { useRedisAdmin } from '../helpers/redis-server.js'
import { uniqueQueue } from '../helpers/util.js'

/** Commands the server ran, by name (INFO commandstats), Lua-issued ones included. */
async function commandCalls(admin: Redis): Promise<Map<string, number>> {
  const stats = (await admin.info('commandstats')) as string
  const calls = new Map<string, number>()
  for (const m of stats.matchAll(/cmdstat_([^:]+):calls=(\d+)/g)) calls.set(m[1]!, Number(m[2]))
  return calls
}

/** Commands a client sends itself (the rest run inside scripts). */
const CLIENT_SENT = new Set([
  'fcall',
  'function|load',
  'evalsha',
  'eval',
  'blpop',
  'subscribe',
  'client|setname',
  'select',
])

describe('redis: cost per task', () => {
  const redis = useRedisAdmin()

  it('a batch at concurrency 50 runs ≤ 8 commands and ≤ 1.5 round trips per task', async () => {
    const n = 2000
    const broker = getBroker(redis.url, uniqueQueue('cost'))
    broker.expose(function add(a: number, b: number) {
      return a + b
    })
    const pool = new WorkerPool(broker, { concurrency: 50 })
    await pool.start()
    try {
      const q = broker.queue()
      expect(await ((await q.add(0, 0)) as Deferred<number>).result(5000)).to.equal(0)
      const before = await commandCalls(redis.admin)
      const all = (await Promise.all(Array.from({ length: n }, (_, i) => q.add(i, 1)))) as Array<
        Deferred<number>
      >
      await Promise.all(all.map(d => d.result(30_000)))
      const after = await commandCalls(redis.admin)
      let commands = 0
      let trips = 0
      for (const [name, calls] of after) {
        if (name === 'info') continue
        const delta = calls - (before.get(name) ?? 0)
        commands += delta
        if (CLIENT_SENT.has(name)) trips += delta
      }
      expect(commands / n, 'commands per task').to.be.at.most(8)
      expect(trips / n, 'round trips per task').to.be.at.most(1.5)
    } finally {
      await pool.stop()
      await broker.close()
    }
  })

  it("a tick's calls reach Redis in one enqueue, or two past 25 (the first 25 at once), and a bulk in parts of 250", async () => {
    const broker = getBroker(redis.url, uniqueQueue('tick'))
    try {
      const q = broker.queue('', { ignoreResult: true })
      await q.warm()
      const enqueues = async (calls: number) => {
        const before = await commandCalls(redis.admin)
        await Promise.all(Array.from({ length: calls }, (_, i) => q.add(i, 1)))
        const after = await commandCalls(redis.admin)
        const sent = (name: string) => (after.get(name) ?? 0) - (before.get(name) ?? 0)
        return sent('fcall') + sent('evalsha')
      }
      expect(await enqueues(10)).to.equal(1)
      expect(await enqueues(25)).to.equal(1)
      expect(await enqueues(60)).to.equal(2)
      // A bulk goes in parts: the first 25, then every 250, then the rest as the tick ends.
      expect(await enqueues(600)).to.equal(4)
      expect(await enqueues(525)).to.equal(3)
      expect(await broker.size()).to.equal(96 + 600 + 525)
    } finally {
      await broker.purge()
      await broker.close()
    }
  })

  it('outcomes of tasks run in the process that enqueued them come back in the reply, unpublished', async () => {
    const broker = getBroker(redis.url, uniqueQueue('local'))
    broker.expose(function add(a: number, b: number) {
      return a + b
    })
    const pool = new WorkerPool(broker, { concurrency: 4 })
    await pool.start()
    try {
      const q = broker.queue()
      expect(await ((await q.add(0, 0)) as Deferred<number>).result(5000)).to.equal(0)
      const before = (await commandCalls(redis.admin)).get('publish') ?? 0
      const all = (await Promise.all(Array.from({ length: 200 }, (_, i) => q.add(i, 1)))) as Array<
        Deferred<number>
      >
      expect(await Promise.all(all.map(d => d.result(10_000)))).to.deep.equal(
        Array.from({ length: 200 }, (_, i) => i + 1),
      )
      const after = (await commandCalls(redis.admin)).get('publish') ?? 0
      expect(after - before, 'PUBLISH calls').to.equal(0)
    } finally {
      await pool.stop()
      await broker.close()
    }
  })
})
