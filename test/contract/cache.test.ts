import { expect } from 'chai'
import { getBroker, task, type TaskContext } from '../../lib/index.js'
import { backends } from '../helpers/backends.js'
import { latch, uniqueQueue, until, withWorker } from '../helpers/util.js'

for (const backend of backends) {
  describe(`contract: result cache [${backend.name}]`, () => {
    let url: string
    before(async () => {
      url = await backend.url()
    })

    /** A worker whose `square(n)` counts its runs. */
    async function squares(options: { concurrency?: number } = {}) {
      const runs: number[] = []
      const gate = { open: latch() }
      gate.open.resolve()
      const w = await withWorker(
        url,
        b =>
          b.expose(async function square(this: TaskContext, n: number) {
            runs.push(n)
            await gate.open.promise
            if (n < 0) throw new RangeError('negative')
            return n * n
          }),
        options,
      )
      const q = w.broker.queue()
      const cached = (n: number, ttl?: number) =>
        task(q.square, { cache: ttl === undefined ? true : { ttl } })(n)
      return { w, q, runs, gate, cached }
    }

    it('two identical calls run the function once and both get the value; another argument runs again', async () => {
      const { w, runs, cached } = await squares()
      try {
        const a = await cached(3)
        expect(await a.result(5000)).to.equal(9)
        expect(a.cached).to.equal(false)
        const b = await cached(3)
        expect(await b.result(5000)).to.equal(9)
        expect(b.cached).to.equal(true)
        expect((await b.info())!.cached).to.equal(true)
        expect((await a.info())!.cached).to.equal(false)
        expect(await (await cached(4)).result(5000)).to.equal(16)
        expect(runs).to.deep.equal([3, 4])
        expect(await w.broker.cache.size()).to.equal(2)
      } finally {
        await w.close()
      }
    })

    it('a Deferred argument counts by its value', async () => {
      const { w, q, runs, cached } = await squares()
      try {
        expect(await (await cached(5)).result(5000)).to.equal(25)
        const two = await q.square(2) // not cached: runs
        const viaDeferred = await task(q.square, { cache: true })(two)
        expect(await viaDeferred!.result(5000)).to.equal(16)
        const again = await task(q.square, { cache: true })(await q.square(2))
        expect(await again!.result(5000)).to.equal(16)
        expect(again!.cached).to.equal(true)
        expect(runs.filter(n => n === 4)).to.have.length(1)
      } finally {
        await w.close()
      }
    })

    it('invalidate makes the next call run; clear empties the cache; failures are never cached', async () => {
      const { w, q, runs, cached } = await squares()
      try {
        await (await cached(6)).result(5000)
        expect(await w.broker.cache.invalidate(q.square, 6)).to.equal(true)
        expect(await w.broker.cache.invalidate(q.square, 6)).to.equal(false)
        await (await cached(6)).result(5000)
        expect(runs).to.deep.equal([6, 6])
        const bad = await cached(-1)
        expect(await bad.result(5000).catch((e: unknown) => e)).to.be.an('error')
        const badAgain = await cached(-1)
        await badAgain.wait(5000)
        expect(runs.filter(n => n === -1)).to.have.length(2)
        expect(await w.broker.cache.clear()).to.equal(1)
        expect(await w.broker.cache.size()).to.equal(0)
      } finally {
        await w.close()
      }
    })

    it('an entry expires with its TTL, and the call runs again', async () => {
      const { w, runs, cached } = await squares()
      try {
        await (await cached(7, 150)).result(5000)
        expect((await (await cached(7, 150)).info())!.cached).to.equal(true)
        await new Promise(r => setTimeout(r, 200)) // past the TTL: time itself is under test
        await (await cached(7, 150)).result(5000)
        expect(runs).to.deep.equal([7, 7])
      } finally {
        await w.close()
      }
    })

    it('single flight: 20 identical calls made at once run the function once', async () => {
      const { w, runs, gate, cached } = await squares({ concurrency: 8 })
      try {
        gate.open = latch()
        const calls = await Promise.all(Array.from({ length: 20 }, () => cached(9)))
        await until(() => runs.length === 1, 5000, 'the first run')
        gate.open.resolve()
        const values = await Promise.all(calls.map(d => d.result(5000)))
        expect(values).to.deep.equal(new Array(20).fill(81))
        expect(runs).to.deep.equal([9])
        expect(calls.filter(d => d.cached)).to.have.length(19)
      } finally {
        await w.close()
      }
    })

    it('when the call that followers wait for fails, each of them runs on its own', async () => {
      const { w, runs, gate, cached } = await squares({ concurrency: 4 })
      try {
        gate.open = latch()
        const calls = await Promise.all(Array.from({ length: 3 }, () => cached(-2)))
        await until(() => runs.length === 1, 5000, 'the first run')
        gate.open.resolve()
        for (const d of calls) await d.wait(5000)
        expect(runs).to.deep.equal([-2, -2, -2])
        for (const d of calls) expect(await d.status()).to.equal('failed')
      } finally {
        await w.close()
      }
    })

    it('holds at most cacheSize entries, least recently used evicted first', async () => {
      const { w, runs, cached } = await squares()
      try {
        expect(await w.broker.cache.configure({ size: 3 })).to.deep.include({ size: 3 })
        expect((await w.broker.settings()).cacheSize).to.equal(3)
        for (const n of [1, 2, 3]) await (await cached(n)).result(5000)
        await (await cached(1)).result(5000) // 1 is now the most recently used
        await (await cached(4)).result(5000) // evicts 2
        expect(await w.broker.cache.size()).to.equal(3)
        await (await cached(2)).result(5000)
        await (await cached(1)).result(5000)
        expect(runs).to.deep.equal([1, 2, 3, 4, 2])
      } finally {
        await w.close()
      }
    })

    it('cache options are checked at the call', async () => {
      const broker = getBroker(url, uniqueQueue('cache'))
      try {
        const q = broker.queue()
        for (const cache of ['yes', { ttl: 0 }, { ttl: 5, size: 1 }]) {
          const err = await Promise.resolve()
            .then(() => task(q.f, { cache: cache as never })())
            .catch((e: unknown) => e)
          expect(err, JSON.stringify(cache)).to.be.instanceOf(TypeError)
          expect((err as Error).message).to.match(/cache/)
        }
        const err = await broker.cache.configure({ size: 0 }).catch((e: unknown) => e)
        expect(err).to.be.instanceOf(TypeError)
        expect((err as Error).message).to.match(/`cacheSize`/)
      } finally {
        await broker.close()
      }
    })
  })
}
