import { expect } from 'chai'
import { rateWindowMs } from '../../lib/backends/rules.js'
import { getBroker, task, TaskSpace, WorkerPool } from '../../lib/index.js'
import { backends } from '../helpers/backends.js'
import { latch, uniqueQueue, until } from '../helpers/util.js'

for (const backend of backends) {
  describe(`contract: limits [${backend.name}]`, () => {
    let url: string
    before(async () => {
      url = await backend.url()
    })

    it('a concurrency limit is never exceeded, while other tasks of the queue run at full speed', async () => {
      const queue = uniqueQueue('limit')
      const broker = getBroker(url, queue)
      let running = 0
      let most = 0
      broker.expose(
        new TaskSpace('reports', {
          async build(ms: number) {
            running++
            most = Math.max(most, running)
            await new Promise(r => setTimeout(r, ms))
            running--
            return ms
          },
        }),
      )
      broker.expose(function fast(n: number) {
        return n
      })
      try {
        await broker.limit('reports.build', { concurrency: 2 })
        expect(await broker.limits()).to.deep.equal({ 'reports.build': { concurrency: 2 } })
        const pool = new WorkerPool(broker, { concurrency: 8, prefetch: 0 })
        await pool.start()
        const q = broker.queue()
        const slow = await Promise.all(Array.from({ length: 6 }, () => q.reports.build(60)))
        await until(() => running === 2, 5000, 'two slow tasks to run')
        const started = Date.now()
        const quick = await Promise.all(Array.from({ length: 100 }, (_, i) => q.fast(i)))
        await Promise.all(quick.map(d => d.result(5000)))
        // The fast tasks did not wait behind the held slow ones.
        expect(Date.now() - started).to.be.below(1000)
        await Promise.all(slow.map(d => d.result(5000)))
        expect(most).to.equal(2)
        await pool.stop()
      } finally {
        await broker.close()
      }
    })

    it('a waiting limited task starts as soon as a slot frees (pushed, not polled)', async () => {
      const queue = uniqueQueue('limit')
      const broker = getBroker(url, queue)
      const release = latch()
      const startedAt: number[] = []
      broker.expose(async function one(n: number) {
        startedAt.push(Date.now())
        if (n === 0) await release.promise
        return n
      })
      try {
        await broker.limit('one', { concurrency: 1 })
        // blockTimeout far above the wait measured: a poll would show.
        const pool = new WorkerPool(broker, { concurrency: 4, blockTimeout: 5000 })
        await pool.start()
        const q = broker.queue()
        const first = await q.one(0)
        await until(() => startedAt.length === 1, 5000, 'the first to start')
        const second = await q.one(1)
        await new Promise(r => setTimeout(r, 100)) // the second waits for the slot meanwhile
        expect(startedAt).to.have.length(1)
        const freed = Date.now()
        release.resolve()
        await first.result(5000)
        expect(await second.result(5000)).to.equal(1)
        expect(startedAt[1]! - freed).to.be.below(1000)
        await pool.stop()
      } finally {
        await broker.close()
      }
    })

    it('a limit on a prefix counts the tasks under it together; "*" limits the whole queue', async () => {
      const queue = uniqueQueue('limit')
      const broker = getBroker(url, queue)
      let running = 0
      let most = 0
      const work = async () => {
        running++
        most = Math.max(most, running)
        await new Promise(r => setTimeout(r, 30))
        running--
      }
      broker.expose(new TaskSpace('reports', { a: work, b: work }))
      try {
        await broker.limit('reports.', { concurrency: 1 })
        const pool = new WorkerPool(broker, { concurrency: 8, prefetch: 0 })
        await pool.start()
        const q = broker.queue()
        const ds = [
          await q.reports.a(),
          await q.reports.b(),
          await q.reports.a(),
          await q.reports.b(),
        ]
        await Promise.all(ds.map(d => d.result(5000)))
        expect(most).to.equal(1)
        await broker.limit('reports.', null)
        await broker.limit('*', { concurrency: 2 })
        most = 0
        const more = await Promise.all(
          Array.from({ length: 8 }, (_, i) => (i % 2 ? q.reports.a() : q.reports.b())),
        )
        await Promise.all(more.map(d => d.result(5000)))
        expect(most).to.equal(2)
        expect(Object.keys(await broker.limits())).to.deep.equal(['*'])
        await pool.stop()
      } finally {
        await broker.close()
      }
    })

    it('a rate limit: at most max starts in any window of per ms', async () => {
      const queue = uniqueQueue('limit')
      const broker = getBroker(url, queue)
      broker.expose(function tick(n: number) {
        return n
      })
      try {
        await broker.limit('tick', { rate: { max: 5, per: 300 } })
        const pool = new WorkerPool(broker, { concurrency: 8 })
        await pool.start()
        const q = broker.queue()
        const ds = await Promise.all(Array.from({ length: 15 }, (_, i) => q.tick(i)))
        await Promise.all(ds.map(d => d.result(10_000)))
        // A start is a worker taking the task (TaskInfo.startedAt, the backend's clock): any
        // window of 300 ms holds at most 5 of them.
        const starts = (await Promise.all(ds.map(d => d.info())))
          .map(i => i!.startedAt!.getTime())
          .sort((a, b) => a - b)
        for (let i = 0; i + 5 < starts.length; i++)
          expect(starts[i + 5]! - starts[i]!, `starts ${i}..${i + 5}`).to.be.at.least(300)
        await pool.stop()
      } finally {
        await broker.close()
      }
    })

    it('a rate limit holds for the starts the functions see, a few ms after their reservations', async () => {
      const queue = uniqueQueue('limit')
      const broker = getBroker(url, queue)
      const seen = new Map<number, number>()
      broker.expose(function stamp(n: number) {
        seen.set(n, Date.now())
        return n
      })
      try {
        await broker.limit('stamp', { rate: { max: 3, per: 1_000 } })
        const pool = new WorkerPool(broker, { concurrency: 8 })
        await pool.start()
        const q = broker.queue()
        const ds = await Promise.all(Array.from({ length: 9 }, (_, i) => q.stamp(i)))
        await Promise.all(ds.map(d => d.result(10_000)))
        await pool.stop()
        expect(seen.size).to.equal(9)
        // Each run: when the function started (this process's clock) and how long after its
        // reservation (startedAt, the backend's clock on this same machine) that was.
        const infos = await Promise.all(ds.map(d => d.info()))
        const runs = infos
          .map((info, n) => {
            const at = seen.get(n)!
            return { at, lag: at - info!.startedAt!.getTime() }
          })
          .sort((a, b) => a.at - b.at)
        // The backend keeps the window over per and a margin (docs/limits.md): the functions see
        // no 4 starts within 1 000 ms as long as the lags of those 4 differ by less than the
        // margin. A process stalled longer (a machine under heavy load) may show them closer, by
        // the excess over the margin and no more: the reservations themselves keep the window.
        const margin = rateWindowMs(1_000) - 1_000
        for (let i = 0; i + 3 < runs.length; i++) {
          const four = runs.slice(i, i + 4).map(r => r.lag)
          const excess = Math.max(0, Math.max(...four) - Math.min(...four) - margin)
          expect(runs[i + 3]!.at - runs[i]!.at, `starts ${i}..${i + 3}`).to.be.at.least(
            1_000 - excess,
          )
        }
      } finally {
        await broker.close()
      }
    })

    it('a slot held by a worker whose lease lapsed is given back when the lease is swept', async () => {
      const queue = uniqueQueue('limit')
      const broker = getBroker(url, queue)
      broker.expose(function job(n: number) {
        return n
      })
      try {
        await broker.limit('job', { concurrency: 1 })
        const held = await task(broker.queue().job, { heartrate: 20 })(1)
        const { backend: b } = await broker.backend()
        // A worker takes the slot and dies.
        expect((await b.exchange(queue, 'dead', [], 1)).reserved).to.have.length(1)
        const next = await broker.queue().job(2)
        await new Promise(r => setTimeout(r, 1100)) // the lease (2 × 20 + 1000 ms) lapses: time is under test
        const pool = new WorkerPool(broker, { sweepInterval: 20 })
        await pool.start()
        expect(await next.result(5000)).to.equal(2)
        expect(await held.result(5000).catch((e: unknown) => (e as Error).name)).to.equal(
          'TaskExpired',
        )
        await pool.stop()
      } finally {
        await broker.close()
      }
    })

    it('bad limits are TypeErrors naming what to change', async () => {
      const broker = getBroker(url, uniqueQueue('limit'))
      try {
        const bad: Array<[string, unknown, RegExp]> = [
          ['a..b', { concurrency: 1 }, /name/],
          ['a', {}, /concurrency`, `rate`/],
          ['a', { concurrency: 0 }, /`concurrency`/],
          ['a', { rate: { max: 1 } }, /`rate.per`/],
          ['a', { rate: { max: 1, per: 10, burst: 2 } }, /`rate`/],
          ['a', { speed: 1 }, /speed/],
        ]
        for (const [name, limit, message] of bad) {
          const err = await broker.limit(name, limit as never).catch((e: unknown) => e)
          expect(err, `${name} ${JSON.stringify(limit)}`).to.be.instanceOf(TypeError)
          expect((err as Error).message).to.match(message)
        }
        expect(await broker.limits()).to.deep.equal({})
      } finally {
        await broker.close()
      }
    })

    it('limits() of a limit named __proto__ set its result’s prototype (redis): every name is an own entry of a null-prototype record', async () => {
      const broker = getBroker(url, uniqueQueue('limit'))
      try {
        await broker.limit('__proto__', { concurrency: 3 })
        await broker.limit('constructor', { rate: { max: 5, per: 1000 } })
        await broker.limit('toString', { concurrency: 1 })
        const limits = await broker.limits()
        expect(Object.getPrototypeOf(limits)).to.equal(null)
        expect(Object.keys(limits).sort()).to.deep.equal(['__proto__', 'constructor', 'toString'])
        expect(Object.getOwnPropertyDescriptor(limits, '__proto__')?.value).to.deep.equal({
          concurrency: 3,
        })
        expect(limits.constructor).to.deep.equal({ rate: { max: 5, per: 1000 } })
        expect(limits.toString).to.deep.equal({ concurrency: 1 })
        // A name that is no limit finds nothing, not an inherited member.
        expect(limits.hasOwnProperty).to.equal(undefined)
        expect(JSON.parse(JSON.stringify(limits))).to.have.own.property('__proto__')
        // Nothing leaked into Object.prototype or into another call's result.
        expect(({} as Record<string, unknown>).concurrency).to.equal(undefined)
        await broker.limit('__proto__', null)
        expect(Object.keys(await broker.limits()).sort()).to.deep.equal(['constructor', 'toString'])
      } finally {
        await broker.close()
      }
    })
  })
}
