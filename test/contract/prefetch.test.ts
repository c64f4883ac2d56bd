/**
 * Prefetch: what a pool takes ahead of its slots, in what order it runs it, and what it gives back
 * at stop.
 */
import { expect } from 'chai'
import { getBroker, WorkerPool, type QueueEvent, type TaskContext } from '../../lib/index.js'
import { backends } from '../helpers/backends.js'
import { latch, uniqueQueue, until, withWorker } from '../helpers/util.js'

for (const backend of backends) {
  describe(`contract: prefetch and release [${backend.name}]`, () => {
    let url: string
    before(async () => {
      url = await backend.url()
    })

    it('prefetched tasks run in order; at stop the unstarted ones go back first in line, attempt uncounted', async () => {
      const queue = uniqueQueue()
      const broker = getBroker(url, queue)
      const started = latch()
      const release = latch()
      const seen: Array<[number, number]> = []
      broker.expose(async function step(this: TaskContext, n: number) {
        seen.push([n, this.attempt])
        if (n === 0) {
          started.resolve()
          await release.promise
        }
        return n
      })
      try {
        const q = broker.queue()
        const first = new WorkerPool(broker, { concurrency: 1, prefetch: 2 })
        await first.start()
        // Quick tasks first: a pool prefetches once it has seen that its tasks are short (their
        // moving average under 5 ms). Twelve of them, so that a first run slowed by compiling or
        // by a loaded machine cannot keep the average up.
        const quick = Array.from({ length: 12 }, (_, i) => 10 + i)
        await Promise.all((await Promise.all(quick.map(n => q.step(n)))).map(d => d.result(5000)))
        seen.length = 0
        const events = broker.events()
        const heard: QueueEvent[] = []
        const reading = (async () => {
          for await (const e of events) heard.push(e)
        })()
        await events.ready
        const ds = await Promise.all([0, 1, 2, 3].map(n => q.step(n)))
        await started.promise
        // Prefetched, not started (a handover brings what can start at once; the prefetch follows
        // in the pool's next exchange).
        await until(async () => (await ds[1]!.status()) === 'processing', 5000, 'task 1 prefetched')
        const stopping = first.stop({ timeout: 5000 })
        release.resolve()
        await stopping
        expect(await ds[0]!.result(1000)).to.equal(0)
        expect(await ds[1]!.status()).to.equal('enqueued')
        const second = new WorkerPool(broker, { concurrency: 1 })
        await second.start()
        expect(await Promise.all(ds.map(d => d.result(5000)))).to.deep.equal([0, 1, 2, 3])
        expect(seen).to.deep.equal([
          [0, 1],
          [1, 1],
          [2, 1],
          [3, 1],
        ])
        await second.stop()
        // The prefetched task's `started` (written when it was reserved) is followed by an
        // `enqueued` that says it went back unstarted; its next `started` has the same attempt.
        await until(() => heard.filter(e => e.type === 'completed').length === 4, 5000, 'events')
        await events.close()
        await reading
        const of = (id: string) => heard.filter(e => e.id === id)
        expect(of(ds[1]!.id).map(e => e.type)).to.deep.equal([
          'enqueued',
          'started',
          'enqueued',
          'started',
          'completed',
        ])
        const [, took, back, again] = of(ds[1]!.id)
        expect(took).to.include({ attempt: 1, workerId: first.id })
        expect(back).to.include({ released: true, attempt: 1, workerId: first.id })
        expect(again).to.include({ attempt: 1, workerId: second.id })
        expect(of(ds[0]!.id).map(e => e.type)).to.deep.equal(['enqueued', 'started', 'completed'])
        expect(of(ds[0]!.id)[0]).to.not.have.property('released')
      } finally {
        await broker.close()
      }
    })

    it('a pool with prefetch runs many tasks to the same results', async () => {
      const w = await withWorker(
        url,
        b =>
          b.expose(function sq(n: number) {
            return n * n
          }),
        {
          concurrency: 2,
          prefetch: 8,
        },
      )
      try {
        const q = w.broker.queue()
        const ds = await Promise.all(Array.from({ length: 200 }, (_, i) => q.sq(i)))
        const got = await Promise.all(ds.map(d => d.result(10_000)))
        expect(got).to.deep.equal(Array.from({ length: 200 }, (_, i) => i * i))
      } finally {
        await w.close()
      }
    })
  })
}

for (const backend of backends) {
  describe(`contract: no prefetch for long tasks [${backend.name}]`, () => {
    it('a pool that has not seen short tasks takes only what its slots can run', async () => {
      const url = await backend.url()
      const queue = uniqueQueue()
      const broker = getBroker(url, queue)
      const release = latch()
      const started = latch()
      broker.expose(async function hold() {
        started.resolve()
        await release.promise
      })
      const pool = new WorkerPool(broker, { concurrency: 1, prefetch: 4 })
      try {
        await pool.start()
        const ds = await Promise.all([1, 2, 3].map(() => broker.queue().hold()))
        await started.promise
        expect(await Promise.all(ds.map(d => d.status()))).to.deep.equal([
          'processing',
          'enqueued',
          'enqueued',
        ])
      } finally {
        release.resolve()
        await pool.stop()
        await broker.close()
      }
    })
  })
}
