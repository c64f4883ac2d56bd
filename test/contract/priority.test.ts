import { expect } from 'chai'
import { getBroker, task, WorkerPool, type TaskContext } from '../../lib/index.js'
import { backends } from '../helpers/backends.js'
import { latch, uniqueQueue, until } from '../helpers/util.js'

for (const backend of backends) {
  describe(`contract: priorities [${backend.name}]`, () => {
    let url: string
    before(async () => {
      url = await backend.url()
    })

    it('calls made on a broker just opened run in the order made, ignoreResult ones included', async () => {
      const queue = uniqueQueue('cold')
      // A fresh broker: its backend opens and its result hub starts listening with these calls.
      const caller = getBroker(url, queue)
      const worker = getBroker(url, queue)
      const seen: number[] = []
      worker.expose(function rec(n: number) {
        seen.push(n)
      })
      const pool = new WorkerPool(worker, { concurrency: 1 })
      try {
        const q = caller.queue()
        const quiet = task(q.rec, { ignoreResult: true })
        await Promise.all([q.rec(1), quiet(2), q.rec(3), quiet(4), q.rec(5)])
        await pool.start()
        await until(() => seen.length === 5, 5000, 'five runs')
        expect(seen).to.deep.equal([1, 2, 3, 4, 5])
      } finally {
        await pool.stop()
        await caller.close()
        await worker.close()
      }
    })

    /** A broker whose `run(label)` records the order labels ran in. */
    function recorder(queue: string) {
      const broker = getBroker(url, queue)
      const order: string[] = []
      broker.expose(function run(label: string) {
        order.push(label)
        return label
      })
      return { broker, order, q: broker.queue() }
    }

    it('runs lower priorities first, first in first out within one', async () => {
      const { broker, order, q } = recorder(uniqueQueue('prio'))
      try {
        const priorities = [5, 0, -3, 0, 5, -3]
        const ds = []
        for (const [i, priority] of priorities.entries())
          ds.push(await task(q.run, { priority })(`${priority}:${i}`))
        const pool = new WorkerPool(broker, { concurrency: 1, prefetch: 0 })
        await pool.start()
        await Promise.all(ds.map(d => d!.result(5000)))
        await pool.stop()
        expect(order).to.deep.equal(['-3:2', '-3:5', '0:1', '0:3', '5:0', '5:4'])
      } finally {
        await broker.close()
      }
    })

    it('calls made in one tick run in the order they were made, past one batch', async () => {
      const { broker, order, q } = recorder(uniqueQueue('prio'))
      try {
        // More calls than one batch carries (the first 25 of a tick go at once, the rest after).
        const labels = Array.from({ length: 80 }, (_, i) => `call ${i}`)
        const ds = await Promise.all(labels.map(label => q.run(label)))
        const pool = new WorkerPool(broker, { concurrency: 1, prefetch: 0 })
        await pool.start()
        await Promise.all(ds.map(d => d!.result(5000)))
        await pool.stop()
        expect(order).to.deep.equal(labels)
      } finally {
        await broker.close()
      }
    })

    it('a delayed task becomes due into its priority', async () => {
      const { broker, order, q } = recorder(uniqueQueue('prio'))
      try {
        const late = await task(q.run, { priority: -1, delay: 150 })('late -1')
        const b = await task(q.run, { priority: 1 })('now 1')
        const a = await task(q.run, { priority: 0 })('now 0')
        await until(async () => (await late!.info())?.runAt !== undefined, 2000, 'runAt')
        await new Promise(r => setTimeout(r, 200)) // past the delay: time itself is under test
        const pool = new WorkerPool(broker, { concurrency: 1, prefetch: 0 })
        await pool.start()
        await Promise.all([late, a, b].map(d => d!.result(5000)))
        await pool.stop()
        expect(order).to.deep.equal(['late -1', 'now 0', 'now 1'])
      } finally {
        await broker.close()
      }
    })

    it('a retried task keeps its priority', async () => {
      const queue = uniqueQueue('prio')
      const broker = getBroker(url, queue)
      const order: string[] = []
      broker.expose(function run(this: TaskContext, label: string) {
        order.push(`${label}#${this.attempt}`)
        if (label === 'flaky' && this.attempt === 1) throw new Error('first attempt fails')
        return label
      })
      try {
        const q = broker.queue()
        const flaky = await task(q.run, { priority: -5, attempts: 2 })('flaky')
        const others = [await q.run('a'), await q.run('b')]
        const pool = new WorkerPool(broker, { concurrency: 1, prefetch: 0 })
        await pool.start()
        expect(await flaky!.result(5000)).to.equal('flaky')
        await Promise.all(others.map(d => d.result(5000)))
        await pool.stop()
        expect(order).to.deep.equal(['flaky#1', 'flaky#2', 'a#1', 'b#1'])
        expect((await flaky!.info())!.priority).to.equal(-5)
      } finally {
        await broker.close()
      }
    })

    it('prefetched tasks released at stop keep their place in their priority', async () => {
      const queue = uniqueQueue('prio')
      const broker = getBroker(url, queue)
      const gate = latch()
      const order: string[] = []
      broker.expose(async function run(label: string) {
        order.push(label)
        if (label === 'first') await gate.promise
        return label
      })
      try {
        const q = broker.queue()
        const pool = new WorkerPool(broker, { concurrency: 1, prefetch: 4 })
        await pool.start()
        // Short tasks first, so that the pool prefetches.
        for (let i = 0; i < 5; i++) await (await q.run(`warm${i}`)).result(5000)
        const first = await q.run('first')
        await until(() => order.includes('first'), 5000, 'first to start')
        const held = [
          await task(q.run, { priority: 2 })('p2'),
          await task(q.run, { priority: 1 })('p1'),
        ]
        await until(async () => (await broker.size()) === 0, 5000, 'prefetch')
        const stopped = pool.stop({ timeout: 5000 })
        gate.resolve()
        await stopped
        const other = await task(q.run, { priority: 1 })('p1 later')
        const pool2 = new WorkerPool(broker, { concurrency: 1, prefetch: 0 })
        await pool2.start()
        await Promise.all([first, ...held, other].map(d => d!.result(5000)))
        await pool2.stop()
        expect(order.slice(6)).to.deep.equal(['p1', 'p1 later', 'p2'])
      } finally {
        await broker.close()
      }
    })

    it('a priority that is not an integer in range is a TypeError at the call, naming the option', async () => {
      const broker = getBroker(url, uniqueQueue('prio'))
      try {
        const q = broker.queue()
        for (const priority of [1.5, 1_000_001, -1_000_001, Number.NaN, '1' as unknown as number]) {
          const err = await Promise.resolve()
            .then(() => task(q.f, { priority })())
            .catch((e: unknown) => e)
          expect(err, String(priority)).to.be.instanceOf(TypeError)
          expect((err as Error).message).to.match(/`priority`/)
        }
        expect(() => broker.queue('', { priority: 0.5 })).to.throw(TypeError, /`priority`/)
        expect(await broker.size()).to.equal(0)
      } finally {
        await broker.close()
      }
    })
  })
}
