/**
 * What worq stores and reads back on Redis, rewritten by something other than worq: an ended
 * task's outcome and metadata, the events counter and metrics fields, schedule definitions,
 * limits. Reads, listings, the scripts, the sweep and the pools must report or leave out what they
 * cannot read, never stop on it. hostile.test.ts feeds hostile records to the worker;
 * postgres-stored.test.ts does this on PostgreSQL.
 */
import { expect } from 'chai'
import { Redis } from 'ioredis'
import { task, WorkerPool } from '../../lib/index.js'
import { echoBroker } from '../helpers/hostile.js'
import { redisUrl } from '../helpers/redis-server.js'
import { uniqueQueue, until } from '../helpers/util.js'

/** A queue whose pool (echo and len) is started, and the pool's errors. */
async function rig() {
  const queue = uniqueQueue('stored')
  const broker = echoBroker(await redisUrl(), queue, 1 << 20)
  const pool = new WorkerPool(broker, { concurrency: 8, sweepInterval: 100 })
  const errors: string[] = []
  pool.on('pool:error', e => errors.push(e.message))
  await pool.start()
  return {
    queue,
    broker,
    pool,
    errors,
    async close() {
      await pool.stop({ timeout: 1000 })
      await broker.close()
    },
  }
}

describe('chaos: stored data that cannot be read [redis]', function () {
  this.timeout(120_000)

  it('ended records whose outcome or metadata cannot be read: task reads and listings say so (BadMessage), not throw', async () => {
    const r = await rig()
    const redis = new Redis(await redisUrl())
    const q = r.broker.queue()
    try {
      const done = await Promise.all(
        ['c', 'z', 'f', 'm'].map(() => task(q.echo, { metadata: { a: 1 } })('v')),
      )
      await Promise.all(done.map(d => d.result(10_000)))
      // An ended record's first line is its outcome, its last `M` and the metadata (docs/redis.md).
      const rewrite = async (id: string, edit: (rec: string) => string) => {
        const k = `worq:{${r.queue}}:t:${id}`
        await redis.set(k, edit((await redis.get(k))!))
      }
      await rewrite(done[0]!.id, rec => rec.replace(/^[^\n]*/, 'cnot json'))
      await rewrite(done[1]!.id, rec => rec.replace(/^[^\n]*/, 'zzz'))
      await rewrite(done[2]!.id, rec => rec.replace(/^[^\n]*/, 'f{"json":'))
      await rewrite(done[3]!.id, rec => rec.replace(/\nM\{"a":1\}$/, '\nM{bad'))
      const infos = await Promise.all(done.map(d => r.broker.task(d.id)))
      expect(infos.map(i => i?.status)).to.deep.equal([
        'completed',
        'failed',
        'failed',
        'completed',
      ])
      for (const i of infos.slice(0, 3)) {
        expect(i?.value).to.equal(undefined)
        expect(i?.error).to.include({ name: 'BadMessage', code: 'ERR_WORQ_BAD_MESSAGE' })
      }
      expect(infos[3]).to.include({ value: 'v' })
      expect(infos[3]?.metadata).to.deep.equal({})
      const listed = await r.broker.tasks()
      expect(listed.map(t => t.id)).to.include.members(done.map(d => d.id))
      expect(r.errors).to.deep.equal([])
    } finally {
      redis.disconnect()
      await r.close()
    }
  })

  it('counters that hold what is not a number (the events counter, metrics fields) start over: calls, metrics and the sweep go on', async () => {
    const r = await rig()
    const redis = new Redis(await redisUrl())
    const key = (s: string) => `worq:{${r.queue}}:${s}`
    const q = r.broker.queue()
    try {
      expect(await (await q.echo('first')).result(10_000)).to.equal('first')
      const minute = Date.now() - (Date.now() % 60_000)
      const earlier = minute - 120_000
      await redis.set(key('evn'), 'banana')
      await redis.hset(key(`m:${minute}`), 'c', 'NaNx')
      // A minute the sweep's fold has still to add to the totals.
      await redis.hset(key(`m:${earlier}`), 'c', 'NaNx', 'f', '2')
      await redis.hset(key('mt'), 'upto', String(earlier))
      const calls = await Promise.all(Array.from({ length: 20 }, (_, i) => q.echo(i)))
      expect(await Promise.all(calls.map(d => d.result(10_000)))).to.deep.equal(
        Array.from({ length: 20 }, (_, i) => i),
      )
      const swept = Date.now()
      await until(
        async () =>
          Number(await redis.get(key('swept'))) > swept &&
          Number(await redis.hget(key('mt'), 'upto')) > earlier,
        15_000,
        'the sweep and its fold',
      )
      const metrics = await r.broker.metrics()
      expect(metrics.totals.failed).to.be.at.least(2)
      expect(metrics.totals.completed).to.be.at.least(20)
      expect(Number(await redis.get(key('evn')))).to.be.greaterThan(0)
      expect(r.errors).to.deep.equal([])
    } finally {
      redis.disconnect()
      await r.close()
    }
  })

  it('a schedule definition that does not read as one is left out; the others and the pool go on', async () => {
    const r = await rig()
    const redis = new Redis(await redisUrl())
    try {
      const q = r.broker.queue()
      await r.broker.schedule('bad', { every: 60_000 }, q.echo, 1)
      await r.broker.schedule('good', { every: 60_000 }, q.echo, 2)
      await redis.hset(`worq:{${r.queue}}:sched`, 'bad', '{"x":1}')
      await redis.hset(`worq:{${r.queue}}:sched`, 'worse', '{not json')
      expect((await r.broker.schedules()).map(s => s.id)).to.deep.equal(['good'])
      await r.broker.schedule('later', { every: 60_000 }, q.echo, 3)
      expect((await r.broker.schedules()).map(s => s.id).sort()).to.deep.equal(['good', 'later'])
      expect(await (await q.echo('after')).result(10_000)).to.equal('after')
      expect(await r.broker.unschedule('bad'), 'unschedule of the unreadable one').to.equal(true)
      expect(r.errors).to.deep.equal([])
    } finally {
      redis.disconnect()
      await r.close()
    }
  })

  it('limits that do not read as limits bind nothing and are left out of limits(); the queue runs', async () => {
    const r = await rig()
    const redis = new Redis(await redisUrl())
    try {
      const q = r.broker.queue()
      await r.broker.limit('len', { concurrency: 1 })
      const lim = `worq:{${r.queue}}:conf`
      const stored = JSON.parse((await redis.hget(lim, 'lim'))!) as Record<string, unknown>
      const hostile = { ...stored, echo: { c: 'lots' }, '*': { r: ['lots', -1] }, x: 5 }
      await redis.hset(lim, 'lim', JSON.stringify(hostile))
      expect(await r.broker.limits()).to.deep.equal({ len: { concurrency: 1 } })
      const calls = await Promise.all(Array.from({ length: 10 }, (_, i) => q.echo(i)))
      expect(await Promise.all(calls.map(d => d.result(10_000)))).to.have.length(10)
      expect(await (await q.len('xyz')).result(10_000)).to.equal(3)
      await redis.hset(lim, 'lim', '{not json')
      expect(await r.broker.limits()).to.deep.equal({})
      expect(await (await q.echo('after')).result(10_000)).to.equal('after')
      expect(r.errors).to.deep.equal([])
    } finally {
      redis.disconnect()
      await r.close()
    }
  })
})
