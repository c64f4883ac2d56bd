import { expect } from 'chai'
import { getBroker, WorkerPool, type Deferred } from '../../lib/index.js'
import { backends } from '../helpers/backends.js'
import { latch, uniqueQueue } from '../helpers/util.js'

for (const backend of backends) {
  describe(`contract: a pool's lanes [${backend.name}]`, () => {
    let url: string
    before(async () => {
      url = await backend.url()
    })

    it('a pool of two lanes runs as <id> and <id>/1 within one concurrency', async () => {
      const queue = uniqueQueue('lanes')
      const broker = getBroker(url, queue)
      const gate = latch()
      const seen = new Set<string>()
      broker.expose(async function gated(this: { workerId: string }, i: number) {
        seen.add(this.workerId)
        await gate.promise
        return i
      })
      const pool = new WorkerPool(broker, { concurrency: 40, lanes: 2, id: 'lanes-pool' })
      try {
        const q = broker.queue()
        const ds = (await Promise.all(Array.from({ length: 41 }, (_, i) => q.gated(i)))) as Array<
          Deferred<number>
        >
        let started = 0
        const full = latch()
        pool.on('task:start', () => {
          if (++started === 40) full.resolve()
        })
        await pool.start()
        await full.promise
        // The pool's concurrency holds across its lanes: 40 run, the 41st waits.
        expect(pool.running).to.equal(40)
        expect([...seen].sort()).to.deep.equal(['lanes-pool', 'lanes-pool/1'])
        expect(pool.lanes).to.deep.equal(['lanes-pool', 'lanes-pool/1'])
        const infos = await Promise.all(ds.map(d => d.info()))
        const running = infos.filter(i => i?.status === 'processing')
        expect(new Set(running.map(i => i?.workerId))).to.deep.equal(
          new Set(['lanes-pool', 'lanes-pool/1']),
        )
        const { workers } = await broker.inspect()
        expect(workers.map(w => w.id)).to.deep.equal(['lanes-pool'])
        expect(workers[0]!.concurrency).to.equal(40)
        gate.resolve()
        expect(await Promise.all(ds.map(d => d.result(10_000)))).to.deep.equal(
          Array.from({ length: 41 }, (_, i) => i),
        )
      } finally {
        gate.resolve()
        await pool.stop()
        await broker.close()
      }
    })

    it('by default two lanes from concurrency 32 on Redis, else one', async () => {
      const queue = uniqueQueue('lanes')
      const broker = getBroker(url, queue)
      const seen = new Set<string>()
      broker.expose(async function who(this: { workerId: string }) {
        seen.add(this.workerId)
        await new Promise(r => setTimeout(r, 20)) // long enough that no lane takes every task
        return this.workerId
      })
      const twoOnRedis = ['redis', 'cluster', 'sentinel'].includes(backend.name)
      try {
        const q = broker.queue()
        for (const [concurrency, expected] of [
          [31, ['small']],
          [32, twoOnRedis ? ['small', 'small/1'] : ['small']],
        ] as const) {
          seen.clear()
          const ds = (await Promise.all(
            Array.from({ length: concurrency }, () => q.who()),
          )) as Array<Deferred<string>>
          const pool = new WorkerPool(broker, { concurrency, id: 'small' })
          await pool.start()
          await Promise.all(ds.map(d => d.result(10_000)))
          await pool.stop()
          expect([...seen].sort()).to.deep.equal(expected)
        }
      } finally {
        await broker.close()
      }
    })

    it('`lanes` sets how many; a bad value is a TypeError that names it', async () => {
      const queue = uniqueQueue('lanes')
      const broker = getBroker(url, queue)
      const seen = new Set<string>()
      broker.expose(function who(this: { workerId: string }) {
        seen.add(this.workerId)
        return this.workerId
      })
      try {
        for (const lanes of [0, 9, 1.5, 5, '2'])
          expect(() => new WorkerPool(broker, { concurrency: 4, lanes: lanes as number }))
            .to.throw(TypeError)
            .with.property('message')
            .that.matches(/`lanes`/)
        const one = new WorkerPool(broker, { concurrency: 64, lanes: 1, id: 'one-lane' })
        await one.start()
        const q = broker.queue()
        const ds = (await Promise.all(Array.from({ length: 100 }, () => q.who()))) as Array<
          Deferred<string>
        >
        expect(new Set(await Promise.all(ds.map(d => d.result(10_000))))).to.deep.equal(
          new Set(['one-lane']),
        )
        await one.stop()
      } finally {
        await broker.close()
      }
    })

    it('a stopped pool leaves no lane behind: the next pool gets the work at once', async () => {
      const queue = uniqueQueue('lanes')
      const broker = getBroker(url, queue)
      broker.expose(function add(a: number, b: number) {
        return a + b
      })
      try {
        const q = broker.queue()
        for (let round = 0; round < 3; round++) {
          const pool = new WorkerPool(broker, { concurrency: 8, lanes: 4 })
          await pool.start()
          const d = (await q.add(round, 1)) as Deferred<number>
          expect(await d.result(5000)).to.equal(round + 1)
          await pool.stop()
        }
        // Work enqueued with no pool running waits in line, not in a stopped lane's hands: the
        // next pool runs it well within a lease (the default heartrate's lease is over a minute).
        const ds = (await Promise.all(Array.from({ length: 20 }, (_, i) => q.add(i, 1)))) as Array<
          Deferred<number>
        >
        const next = new WorkerPool(broker, { concurrency: 4, lanes: 1 })
        await next.start()
        expect(await Promise.all(ds.map(d => d.result(5000)))).to.deep.equal(
          Array.from({ length: 20 }, (_, i) => i + 1),
        )
        await next.stop()
      } finally {
        await broker.close()
      }
    })
  })
}
