import { expect } from 'chai'
import type { Redis } from 'ioredis'
import { getBroker, task, WorkerPool, type Deferred } from '../../lib/index.js'
import { queueKey, queueKeys, queuePattern, taskKey } from '../../lib/backends/redis/keys.js'
import { useRedisAdmin } from '../helpers/redis-server.js'
import { uniqueQueue, until } from '../helpers/util.js'

/**
 * The queue-level keys of what the queue observed (docs/events.md, docs/metrics.md): its event
 * stream and counter, its per-minute metrics and their totals. They are not a task's; each has a TTL.
 */
const OBSERVED = /:(ev|evn|mt|m:\d+)$/

async function keysOf(admin: Redis, queue: string): Promise<string[]> {
  const found: string[] = []
  let cursor = '0'
  do {
    const [next, keys] = await admin.scan(cursor, 'MATCH', queuePattern(queue), 'COUNT', 1000)
    found.push(...keys)
    cursor = next
  } while (cursor !== '0')
  return found
}

describe('redis: nothing is left behind', () => {
  const redis = useRedisAdmin()

  it("after every task finished and its resultTimeout passed, the queue's keys are gone", async () => {
    const queue = uniqueQueue('clean')
    const broker = getBroker(redis.url, queue)
    broker.expose(function add(a: number, b: number) {
      return a + b
    })
    broker.expose(function boom(): never {
      throw new Error('boom')
    })
    const pool = new WorkerPool(broker, { concurrency: 8, sweepInterval: 50 })
    await pool.start()
    await broker.configure({ listing: true })
    try {
      const q = broker.queue('', { resultTimeout: 300 })
      const a = await q.add(1, 2)
      const b = await q.add(a, 3)
      const failed = await task(q.boom, { attempts: 2 })()
      const cascaded = await q.add(failed, 1)
      const passed = await task(q.add, { onError: 'pass' })(failed, 1)
      await task(q.add, { ignoreResult: true })(a, b)
      const held = await task(q.add, { delay: 60_000 })(1, 1)
      // A wide fan-out: past its first few kilobytes, the root's dependents spill into a list of
      // their own (sorted set dm:<id>), which the root's end takes.
      const root = await task(q.add, { delay: 200 })(1, 1)
      const fan = await Promise.all(Array.from({ length: 300 }, (_, i) => q.add(root, i)))
      expect(await redis.admin.exists(queueKey(queue, `dm:${root.id}`))).to.equal(1)
      const waiting: Array<Deferred<unknown>> = [a, b, failed, cascaded, passed, root, ...fan]
      for (const d of waiting) await d.wait(5000)
      expect(await held.cancel()).to.equal(true)
      expect(b.value).to.equal(6)
      expect(fan.map(d => d.value)).to.deep.equal(fan.map((_, i) => 2 + i))
      await until(() => pool.running === 0 && broker.size().then(n => n === 0))
      expect(await broker.tasks()).to.have.length.above(0)
      // The pool's sweep (every 50 ms) drops the listing entries of outcomes once they expired
      // (in the second after: the clean-up goes by whole seconds).
      const listing = [queueKey(queue, 'lss'), queueKey(queue, 'lcs'), queueKey(queue, 'bad')]
      await until(
        async () => (await redis.admin.exists(...listing)) === 0,
        5000,
        'the listing to empty',
      )
      expect(await broker.tasks()).to.deep.equal([])
      await pool.stop()
      const left = (await keysOf(redis.admin, queue)).filter(k => !k.endsWith(':conf'))
      // Whatever remains is an outcome, the sweep guard, or what the queue observed: all of it
      // expires (-2: it has, since it was listed; 0: it does within the millisecond; the sweep's
      // guard lives for its interval). Only -1, a key without an expiry, would stay.
      for (const k of left) {
        const ttl = await redis.admin.pttl(k)
        expect(ttl === -2 || ttl >= 0, `${k}: pttl ${ttl}`).to.equal(true)
      }
      await until(
        async () =>
          (await keysOf(redis.admin, queue)).filter(k => !OBSERVED.test(k) && !k.endsWith(':conf'))
            .length === 0,
        5000,
        'keys to expire',
      )
    } finally {
      await pool.stop()
      await broker.close()
    }
  })

  it('a listing entry whose outcome is still kept when its clean-up comes due waits for a later one', async () => {
    // Redis keeps a key through the millisecond it expires at, and a script's clock can run behind
    // TIME, so a clean-up can find the outcome still there. Lengthening the outcome's life after it
    // was written stands in for that: its entry must go once the outcome is gone, not stay.
    const queue = uniqueQueue('clean')
    const broker = getBroker(redis.url, queue)
    broker.expose(function add(a: number, b: number) {
      return a + b
    })
    const pool = new WorkerPool(broker, { sweepInterval: 50 })
    await broker.configure({ listing: true })
    await pool.start()
    try {
      const d = await broker.queue('', { resultTimeout: 200 }).add(1, 2)
      await d.wait(5000)
      expect(d.value).to.equal(3)
      expect(await redis.admin.pexpire(taskKey(queue, d.id), 2500)).to.equal(1)
      const info = await d.info()
      const list = queueKey(queue, `ls:${Math.floor(info!.createdAt.getTime() / 1000)}`)
      expect(await redis.admin.lrange(list, 0, -1)).to.deep.equal([d.id])
      await until(
        async () => (await redis.admin.exists(taskKey(queue, d.id))) === 0,
        5000,
        'the outcome to expire',
      )
      const listing = [list, queueKey(queue, 'lss'), queueKey(queue, 'lcs')]
      await until(async () => (await redis.admin.exists(...listing)) === 0, 5000, 'the entry to go')
    } finally {
      await pool.stop()
      await broker.close()
    }
  })

  it('a worker that reserves exactly what was ready leaves no wake marker behind', async () => {
    const queue = uniqueQueue('clean')
    const broker = getBroker(redis.url, queue)
    try {
      const { backend } = await broker.backend()
      const q = broker.queue('', { ignoreResult: true })
      await Promise.all([q.a(), q.b(), q.c()])
      expect(await redis.admin.exists(queueKeys(queue).wake)).to.equal(1)
      const { reserved } = await backend.exchange(queue, 'w', [], 3)
      expect(reserved).to.have.length(3)
      expect(await redis.admin.exists(queueKeys(queue).wake)).to.equal(0)
      const done = reserved.map(t => ({ id: t.id, token: t.token, outcome: 'cnull' }))
      await backend.exchange(queue, 'w', done, 0)
      // The tasks left nothing; the worker keeps the memo of that exchange (ended ignoreResult
      // tasks leave no other mark a resend could find) until its next call, a lease at most.
      const memo = `worq:{${queue}}:l:w`
      const taskKeys = async () => (await keysOf(redis.admin, queue)).filter(k => !OBSERVED.test(k))
      expect(await taskKeys()).to.deep.equal([memo])
      const ttl = await redis.admin.pttl(memo)
      expect(ttl).to.be.above(0)
      expect(ttl).to.be.at.most(2 * reserved[0]!.heartrate + 1000)
      await backend.exchange(queue, 'w', [], 0)
      expect(await taskKeys()).to.deep.equal([])
      for (const k of await keysOf(redis.admin, queue))
        expect(await redis.admin.pttl(k), k).to.be.greaterThan(0)
    } finally {
      await broker.close()
    }
  })

  it('the memo of an exchange that took handed-over tasks lasts their lease, not a minute', async () => {
    const queue = uniqueQueue('clean')
    const broker = getBroker(redis.url, queue)
    try {
      const { backend } = await broker.backend()
      // Parked with two slots: the next enqueue hands its tasks over to the list of worker w.
      const parked = await backend.exchange(queue, 'w', [], 2, { ms: 1000, slots: 2 })
      expect(parked.reserved).to.have.length(0)
      const q = broker.queue('', { ignoreResult: true, heartrate: 100 })
      await Promise.all([q.a(), q.b()])
      expect(await redis.admin.llen(`worq:{${queue}}:h:w`)).to.equal(1)
      // Too busy to block on its list, the worker's next exchange takes the handover instead.
      const { reserved } = await backend.exchange(queue, 'w', [], 0)
      expect(reserved).to.have.length(2)
      const ttl = await redis.admin.pttl(`worq:{${queue}}:l:w`)
      expect(ttl).to.be.above(0)
      expect(ttl).to.be.at.most(2 * 100 + 1000)
    } finally {
      await broker.purge()
      await broker.close()
    }
  })
})
