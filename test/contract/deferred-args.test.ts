import { expect } from 'chai'
import {
  getBroker,
  task,
  TaskSpace,
  TaskFailure,
  TaskExpired,
  TaskCancelled,
  WorkerPool,
} from '../../lib/index.js'
import { backends } from '../helpers/backends.js'
import { uniqueQueue, withWorker } from '../helpers/util.js'

function zeroFails(n: number) {
  if (n === 0) throw new Error('zero fail!')
  return n
}

for (const backend of backends) {
  describe(`contract: Deferred arguments [${backend.name}]`, () => {
    let url: string
    before(async () => {
      url = await backend.url()
    })

    const space = () =>
      new TaskSpace('', {
        func: (x: unknown) => x,
        sum: (xs: number[]) => xs.reduce((s, x) => s + x, 0),
        add: (a: number, b: number) => a + b,
        zeroFails,
      })

    it('a list of Deferred arguments is summed (values, not Deferreds, arrive)', async () => {
      const w = await withWorker(url, b => b.expose(space()))
      try {
        const q = w.broker.queue()
        const d = await q.sum([q.func(1), q.func(2), q.func(3)])
        expect(await d.result(5000)).to.equal(6)
      } finally {
        await w.close()
      }
    })

    it('a two-level chain resolves', async () => {
      const w = await withWorker(url, b => b.expose(space()))
      try {
        const q = w.broker.queue()
        const d = await q.add(q.sum([q.func(1), q.func(2), q.func(3)]), q.func(4))
        expect(await d.result(5000)).to.equal(10)
      } finally {
        await w.close()
      }
    })

    it('Deferreds nested in plain objects and arrays, used twice, and fanned out', async () => {
      const w = await withWorker(url, b => b.expose(space()))
      try {
        const q = w.broker.queue()
        const a = await q.func(2)
        const nested = await q.func({ k: [a, [q.func(3)]], again: a })
        const twice = await q.add(a, a)
        expect(await nested.result(5000)).to.deep.equal({ k: [2, [3]], again: 2 })
        expect(await twice.result(5000)).to.equal(4)
        expect(await a.result(5000)).to.equal(2)
      } finally {
        await w.close()
      }
    })

    it('a fan-out / fan-in dependency graph', async () => {
      const w = await withWorker(url, b =>
        b.expose(
          new TaskSpace('', {
            left: (n: number) => ['left', n],
            right: (n: number) => ['right', n],
            catch: (l: unknown, r: unknown, n: number) => [n, [l, r]],
            combine: (items: [number, unknown][]) => Object.fromEntries(items),
          }),
        ),
      )
      try {
        const q = w.broker.queue()
        const catches = [1, 2, 3].map(n => q.catch(q.left(n), q.right(n), n))
        const d = await q.combine(catches)
        expect(await d.result(5000)).to.deep.equal({
          1: [
            ['left', 1],
            ['right', 1],
          ],
          2: [
            ['left', 2],
            ['right', 2],
          ],
          3: [
            ['left', 3],
            ['right', 3],
          ],
        })
      } finally {
        await w.close()
      }
    })

    it("onError 'pass' hands the argument's TaskFailure in as a value", async () => {
      const w = await withWorker(url, b => b.expose(space()))
      try {
        const q = w.broker.queue()
        const failing = await q.zeroFails(0)
        const d = await task(q.func, { onError: 'pass' })([q.zeroFails(1), failing, q.zeroFails(2)])
        const value = (await d.result(5000)) as unknown[]
        expect(value[0]).to.equal(1)
        expect(value[2]).to.equal(2)
        expect(value[1]).to.be.instanceOf(TaskFailure)
        expect(String((value[1] as TaskFailure).message)).to.equal(
          `zeroFails [${w.broker.name}:${failing.id}] Error: zero fail!`,
        )
      } finally {
        await w.close()
      }
    })

    it("onError 'fail' (default) fails the dependent with the argument's failure, down a whole graph", async () => {
      const w = await withWorker(url, b => b.expose(space()))
      try {
        const q = w.broker.queue()
        const failing = await q.zeroFails(0)
        const mid = await q.func([q.zeroFails(1), failing, q.zeroFails(2)])
        const top = await q.sum([mid, q.func(5)])
        for (const d of [mid, top]) {
          const err = await d.result(5000).catch((e: unknown) => e)
          expect(err).to.be.instanceOf(TaskFailure)
          expect((err as TaskFailure).taskId).to.equal(failing.id)
          expect((err as Error).message).to.equal(
            `zeroFails [${w.broker.name}:${failing.id}] Error: zero fail!`,
          )
          expect(await d.status()).to.equal('failed')
        }
      } finally {
        await w.close()
      }
    })

    it('a dependent enqueued after its argument already failed fails at once', async () => {
      const w = await withWorker(url, b => b.expose(space()))
      try {
        const q = w.broker.queue()
        const failing = await q.zeroFails(0)
        await failing.wait(5000)
        const d = await q.func(failing)
        const err = await d.result(5000).catch((e: unknown) => e)
        expect((err as TaskFailure).taskId).to.equal(failing.id)
      } finally {
        await w.close()
      }
    })

    it('a completed Deferred as argument: the value arrives, and the Deferred keeps it', async () => {
      const w = await withWorker(url, b => b.expose(space()))
      try {
        const q = w.broker.queue()
        const r0 = await q.func(1)
        expect(await r0.result(5000)).to.equal(1)
        const r1 = await q.add(r0, 1)
        expect(await r1.result(5000)).to.equal(2)
        expect(r0.value).to.equal(1)
      } finally {
        await w.close()
      }
    })

    it('a rejected promise argument rejects the call and enqueues nothing', async () => {
      const broker = getBroker(url, uniqueQueue())
      try {
        const q = broker.queue()
        const err = await q.func(Promise.reject(new Error('no'))).catch((e: unknown) => e)
        expect((err as Error).message).to.equal('no')
        expect(await broker.size()).to.equal(0)
      } finally {
        await broker.close()
      }
    })

    it('dependents on another queue of the same backend', async () => {
      const a = await withWorker(url, b => b.expose(space()))
      const b = await withWorker(url, br => br.expose(space()))
      try {
        const qa = a.broker.queue()
        const qb = b.broker.queue()
        const d = await qb.add(qa.func(20), qa.func(22))
        expect(await d.result(5000)).to.equal(42)
      } finally {
        await a.close()
        await b.close()
      }
    })

    it('a cascade goes depth first: what a failing dependent makes ready joins the line before the next dependent', async () => {
      const queue = uniqueQueue()
      const broker = getBroker(url, queue)
      try {
        const q = broker.queue()
        const root = await q.func(0)
        // Registered on root in this order: a dependent that fails with it, then one that takes
        // the failure in. The first has a dependent of its own, waiting on it in two slots, and
        // another that fails with it, also through two slots.
        const fails = await q.func(root)
        const takes = await task(q.func, { onError: 'pass' })(root)
        const under = await task(q.add, { onError: 'pass' })(fails, fails)
        const failsToo = await q.add(fails, fails)
        expect(await root.cancel()).to.equal(true)
        const { backend } = await broker.backend()
        const order = (await backend.exchange(queue, 'w', [], 10)).reserved.map(t => t.id)
        expect(order).to.deep.equal([under.id, takes.id])
        for (const d of [fails, failsToo]) {
          const err = await d.result(5000).catch((e: unknown) => e)
          expect(err, d.id).to.be.instanceOf(TaskCancelled)
          expect((err as TaskCancelled).taskId).to.equal(root.id)
        }
      } finally {
        await broker.purge()
        await broker.close()
      }
    })

    it('an expired argument expires its dependents (nothing in a graph waits forever)', async () => {
      const queue = uniqueQueue()
      const broker = getBroker(url, queue)
      broker.expose(space())
      try {
        const q = broker.queue()
        const arg = await task(q.func, { heartrate: 20 })(1)
        const dep = await q.add(arg, 1)
        const { backend } = await broker.backend()
        // A worker reserves the argument and dies: nobody renews its lease.
        const { reserved } = await backend.exchange(queue, 'dead-worker', [], 1)
        expect(reserved.map(r => r.id)).to.deep.equal([arg.id])
        const pool = new WorkerPool(broker, { sweepInterval: 20 })
        await pool.start()
        for (const d of [arg, dep]) {
          const err = await d.result(5000).catch((e: unknown) => e)
          expect(err).to.be.instanceOf(TaskExpired)
          expect((err as TaskExpired).taskId).to.equal(arg.id)
        }
        await pool.stop()
      } finally {
        await broker.close()
      }
    })

    it('a pending Deferred of a store this backend cannot see is refused at the call; a completed one passes its value', async () => {
      // Another memory:// store: no backend of another kind (nor another memory store) sees it.
      const other = getBroker(`memory://elsewhere-${uniqueQueue()}`, uniqueQueue())
      other.expose(space())
      const broker = getBroker(url, uniqueQueue())
      broker.expose(space())
      try {
        const pending = await other.queue().func(1)
        const err = await broker
          .queue()
          .add(pending, 1)
          .catch((e: unknown) => e)
        expect(err).to.be.instanceOf(TypeError)
        expect((err as Error).message).to.match(
          /add is a Deferred of func .*cannot see: pass its value/,
        )
        expect(await broker.size()).to.equal(0)
        // Run on its own store, the argument carries its value to the other backend's call.
        const pool = new WorkerPool(other, { concurrency: 1 })
        await pool.start()
        await pending.result(5000)
        await pool.stop()
        const w = new WorkerPool(broker, { concurrency: 1 })
        await w.start()
        const d = await broker.queue().add(pending, 1)
        expect(await d.result(5000)).to.equal(2)
        await w.stop()
      } finally {
        await other.close()
        await broker.close()
      }
    })
  })
}
