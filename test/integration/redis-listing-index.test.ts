import { expect } from 'chai'
import type { Redis } from 'ioredis'
import { getBroker, task, WorkerPool, type Broker } from '../../lib/index.js'
import { queueKey, queuePattern } from '../../lib/backends/redis/keys.js'
import { useRedisAdmin } from '../helpers/redis-server.js'
import { uniqueQueue, until } from '../helpers/util.js'

/** The queue's listing lists (`ls:<second>`), each with its ids. */
async function lists(admin: Redis, queue: string): Promise<Map<string, string[]>> {
  const found = new Map<string, string[]>()
  let cursor = '0'
  do {
    const [next, keys] = await admin.scan(cursor, 'MATCH', queuePattern(queue), 'COUNT', 1000)
    for (const k of keys)
      if (/:ls:\d+$/.test(k))
        found.set(k.slice(k.lastIndexOf(':') + 1), await admin.lrange(k, 0, -1))
    cursor = next
  } while (cursor !== '0')
  return found
}

function secondOf(d: Date): string {
  return String(Math.floor(d.getTime() / 1000))
}

describe('redis: the listing index of per-second lists', () => {
  const redis = useRedisAdmin()

  /** A broker on a queue of its own that exposes `add`. */
  function adder() {
    const queue = uniqueQueue('lsix')
    const broker = getBroker(redis.url, queue)
    broker.expose(function add(a: number, b: number) {
      return a + b
    })
    return { queue, broker }
  }

  /** Runs `fn` while a pool of `broker` runs, sweeping every 50 ms; stops the pool after. */
  async function swept(
    broker: Broker,
    fn: () => Promise<void>,
    concurrency?: number,
  ): Promise<void> {
    const pool = new WorkerPool(broker, {
      sweepInterval: 50,
      ...(concurrency ? { concurrency } : {}),
    })
    await pool.start()
    try {
      await fn()
    } finally {
      await pool.stop()
    }
  }

  /** Resolves once `queue` has no listing list and no `lss` left. */
  async function listsGone(queue: string): Promise<void> {
    await until(
      async () =>
        (await lists(redis.admin, queue)).size === 0 &&
        (await redis.admin.exists(queueKey(queue, 'lss'))) === 0,
      5000,
      'the lists to go',
    )
  }

  it('5 000 tasks read in pages over several steps come back newest first, none repeated or skipped', async () => {
    const queue = uniqueQueue('lsix')
    const broker = getBroker(redis.url, queue)
    try {
      const q = broker.queue()
      const made: string[] = []
      for (let i = 0; i < 5; i++) {
        const batch = await Promise.all(Array.from({ length: 1000 }, (_, j) => q.add(i, j)))
        made.push(...batch.map(d => d.id))
      }
      // A page of 1 000 takes the listing's steps of 2 000 entries one at a time, from offsets
      // inside a list.
      const seen: string[] = []
      for (let offset = 0; offset < 5000; offset += 700) {
        const page = await broker.tasks({ limit: 700, offset })
        seen.push(...page.map(t => t.id))
      }
      expect(seen).to.deep.equal([...made].reverse())
      const some = await broker.tasks({ limit: 100, offset: 2450 })
      expect(some.map(t => t.id)).to.deep.equal([...made].reverse().slice(2450, 2550))
    } finally {
      await broker.close()
    }
  })

  it('an id enqueued again after its task ended is listed once, as its new run', async () => {
    const { queue, broker } = adder()
    try {
      await swept(broker, async () => {
        const first = await task(broker.queue().add, { id: 'again' })(1, 2)
        await first.wait(5000)
        const before = (await first.info())!
        // A stale entry of an earlier run in an older list, as one whose record expired before the
        // id came back would leave: passed over, its record being of another second.
        const old = String(Math.floor(before.createdAt.getTime() / 1000) - 5)
        await redis.admin.rpush(queueKey(queue, `ls:${old}`), 'again')
        await redis.admin.zadd(queueKey(queue, 'lss'), old, old)
        const second = await task(broker.queue().add, { id: 'again' })(3, 4)
        await second.wait(5000)
        expect(second.value).to.equal(7)
        const listed = await broker.tasks()
        expect(listed.map(t => t.id)).to.deep.equal(['again'])
        expect(listed[0]!.value).to.equal(7)
        const after = (await second.info())!
        const byList = await lists(redis.admin, queue)
        expect(byList.get(secondOf(after.createdAt))).to.deep.equal(['again'])
        if (secondOf(before.createdAt) !== secondOf(after.createdAt))
          expect(byList.has(secondOf(before.createdAt))).to.equal(false)
      })
    } finally {
      await broker.close()
    }
  })

  it('a list keeps the task still waiting and lets go of those whose outcomes expired', async () => {
    const { queue, broker } = adder()
    try {
      await swept(broker, async () => {
        const q = broker.queue('', { resultTimeout: 100 })
        const [held, ...done] = await Promise.all([
          task(q.add, { delay: 3_600_000 })(0, 0),
          ...Array.from({ length: 20 }, (_, i) => q.add(i, 1)),
        ])
        for (const d of done) await d.wait(5000)
        await until(
          async () => {
            const all = [...(await lists(redis.admin, queue)).values()].flat()
            return all.length === 1 && all[0] === held!.id
          },
          5000,
          'the lists to hold the waiting task alone',
        )
        expect((await broker.tasks()).map(t => t.id)).to.deep.equal([held!.id])
        expect(await redis.admin.zcard(queueKey(queue, 'lss'))).to.equal(1)
      })
    } finally {
      await broker.close()
    }
  })

  it('a list of hundreds of ignoreResult tasks goes within seconds of their ends', async () => {
    const queue = uniqueQueue('lsix')
    const broker = getBroker(redis.url, queue)
    let ran = 0
    let all!: () => void
    const done = new Promise<void>(resolve => (all = resolve))
    broker.expose(function tick() {
      if (++ran === 400) all()
    })
    try {
      const q = broker.queue('', { ignoreResult: true })
      await Promise.all(Array.from({ length: 400 }, () => q.tick()))
      expect([...(await lists(redis.admin, queue)).values()].flat()).to.have.length(400)
      await swept(
        broker,
        async () => {
          await done
          await listsGone(queue)
          expect(await broker.tasks()).to.deep.equal([])
        },
        20,
      )
    } finally {
      await broker.close()
    }
  })

  it('with listing turned off, the sweep still drops the lists of tasks that ended', async () => {
    const { queue, broker } = adder()
    try {
      const q = broker.queue('', { resultTimeout: 100 })
      const ds = await Promise.all(Array.from({ length: 30 }, (_, i) => q.add(i, 1)))
      expect([...(await lists(redis.admin, queue)).values()].flat()).to.have.length(30)
      await broker.configure({ listing: false })
      await swept(broker, async () => {
        for (const d of ds) await d.wait(5000)
        await listsGone(queue)
      })
    } finally {
      await broker.close()
    }
  })

  it("an earlier version's index (a sorted set) is moved into lists by the sweep", async () => {
    const { queue, broker } = adder()
    try {
      const q = broker.queue()
      const ds = await Promise.all(Array.from({ length: 40 }, (_, i) => q.add(i, 1)))
      // Rewrite the index as the earlier version kept it: `idx` scored by µs, clean-up buckets.
      const byList = await lists(redis.admin, queue)
      let score = 1_700_000_000_000_000
      const idx = queueKey(queue, 'idx')
      for (const id of [...byList.entries()].sort().flatMap(([, ids]) => ids))
        await redis.admin.zadd(idx, String(score++), id)
      for (const sec of byList.keys()) await redis.admin.del(queueKey(queue, `ls:${sec}`))
      await redis.admin.del(queueKey(queue, 'lss'))
      await redis.admin.rpush(queueKey(queue, 'gc:1700000001'), ds[0]!.id)
      await redis.admin.zadd(queueKey(queue, 'gcs'), '1700000001', '1700000001')
      expect(await broker.tasks()).to.deep.equal([])
      await swept(broker, async () => {
        await until(
          async () =>
            (await redis.admin.exists(
              idx,
              queueKey(queue, 'gcs'),
              queueKey(queue, 'gc:1700000001'),
            )) === 0,
          5000,
          'the earlier index to be moved',
        )
        for (const d of ds) await d.wait(5000)
        const listed = await broker.tasks()
        expect(listed.map(t => t.id)).to.deep.equal(ds.map(d => d.id).reverse())
        expect(listed.every(t => t.status === 'completed')).to.equal(true)
      })
    } finally {
      await broker.close()
    }
  })
})
