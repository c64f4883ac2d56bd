import { expect } from 'chai'
import {
  getBroker,
  task,
  TaskCancelled,
  TaskFailure,
  TaskSpace,
  WorkerPool,
  type Deferred,
} from '../../lib/index.js'
import { backends } from '../helpers/backends.js'
import { latch, uniqueQueue, until } from '../helpers/util.js'

/**
 * Operations that touch thousands of tasks in one atomic step. More than 8 000: the Lua in Redis
 * hands at most about 8 000 values to one command (`unpack`), so this many ids in one list (a
 * purge's clean-up entries, a cascade's, the pending tasks a listing reads, the prioritized tasks
 * a completion makes ready) must go in pieces (docs/redis.md, "Scripts").
 */
const MANY = 8_500

/** `n` calls in one tick (the broker sends them as a few batches). */
async function many<T>(n: number, call: (i: number) => Promise<T>): Promise<T[]> {
  return Promise.all(Array.from({ length: n }, (_, i) => call(i)))
}

for (const backend of backends) {
  describe(`contract: operations on thousands of tasks at once [${backend.name}]`, function () {
    this.timeout(120_000)
    let url: string
    before(async () => {
      url = await backend.url()
    })

    it(`purge cancels ${MANY} waiting tasks in one call and reports each`, async () => {
      const broker = getBroker(url, uniqueQueue('large-purge'))
      try {
        const q = broker.queue()
        const ds = await many(MANY, i => q.work(i))
        expect(await broker.size()).to.equal(MANY)
        expect(await broker.purge()).to.equal(MANY)
        expect(await broker.size()).to.equal(0)
        for (const d of [ds[0]!, ds[MANY - 1]!]) {
          expect(await d.result(5000).catch((e: unknown) => e)).to.be.instanceOf(TaskCancelled)
        }
        expect(await broker.tasks({ status: 'cancelled', limit: 1000 })).to.have.length(1000)
      } finally {
        await broker.close()
      }
    })

    it(`a cancel cascades to ${MANY} dependents, which a listing reads while they are pending`, async () => {
      const broker = getBroker(url, uniqueQueue('large-cascade'))
      try {
        const q = broker.queue()
        const root = await task(q.work, { delay: 600_000 })('root')
        const deps = await many(MANY, i => q.work(root, i))
        expect(await broker.size()).to.equal(MANY + 1)
        const pending = await broker.tasks({ status: 'pending', limit: 5 })
        expect(pending).to.have.length(5)
        expect(pending.every(t => t.status === 'pending')).to.equal(true)
        expect(await root.cancel()).to.equal(true)
        expect(await broker.size()).to.equal(0)
        for (const d of [deps[0]!, deps[MANY - 1]!]) {
          // onError 'fail': the dependent ends with its argument's TaskCancelled (docs/tasks.md).
          expect(await d.result(5000).catch((e: unknown) => e)).to.be.instanceOf(TaskCancelled)
          expect(await d.status()).to.equal('cancelled')
        }
      } finally {
        await broker.purge().catch(() => undefined)
        await broker.close()
      }
    })

    it(`a result fans out to ${MANY} dependents on another queue, and its cancel reaches them all`, async () => {
      // On a Redis Cluster each edge is a hand-over between slots: the argument's queue registers
      // the dependents in a second step (link.lua), which must stay cheap however many there are.
      const a = getBroker(url, uniqueQueue('large-from'))
      const b = getBroker(url, uniqueQueue('large-to'))
      try {
        const root = await task(a.queue().work, { delay: 600_000 })('root')
        const deps = await many(MANY, i => b.queue().work(root, i))
        expect(await b.size()).to.equal(MANY)
        expect(await root.cancel()).to.equal(true)
        for (const d of [deps[0]!, deps[MANY - 1]!]) {
          expect(await d.result(10_000).catch((e: unknown) => e)).to.be.instanceOf(TaskCancelled)
        }
        await until(async () => (await b.size()) === 0, 10_000, 'the dependents to end')
      } finally {
        await a.purge().catch(() => undefined)
        await b.purge().catch(() => undefined)
        await a.close()
        await b.close()
      }
    })

    it('a task with 2 000 Deferred arguments runs once they all complete, and so does one with a 1 500-character name', async () => {
      // On Redis each argument's end fills its slot by reading the record's first bytes (the
      // header's generation), not its whole header with the list of arguments; a name this long
      // pushes the generation past those bytes, and the record is read whole.
      const long = `sum_${'x'.repeat(1_500)}`
      const broker = getBroker(url, uniqueQueue('large-fanin'))
      const sum = (xs: number[]) => xs.reduce((s, x) => s + x, 0)
      broker.expose(new TaskSpace('', { id: (x: number) => x, sum, [long]: sum }))
      const pool = new WorkerPool(broker, { concurrency: 50 })
      try {
        const q = broker.queue()
        const leaves = await many(2_000, i => task(q.id, { delay: 200 })(i))
        const total = await q.sum(leaves)
        const named = await (
          q as unknown as Record<string, (xs: unknown) => Promise<Deferred<number>>>
        )[long]!(leaves.slice(0, 20))
        expect(await total.status()).to.equal('pending')
        await pool.start()
        expect(await total.result(60_000)).to.equal((2_000 * 1_999) / 2)
        expect(await named.result(10_000)).to.equal((20 * 19) / 2)
      } finally {
        await pool.stop({ timeout: 2000 })
        await broker.close()
      }
    })

    it('a chain of 5 000 tasks whose first fails ends every one of them, and the queue goes on', async () => {
      // The cascade goes down the chain with a stack of its own: on PostgreSQL a recursion passed
      // the server's stack depth at about 300 links, on memory:// Node's at a few thousand, and
      // the failure could never be recorded.
      const broker = getBroker(url, uniqueQueue('large-chain'))
      const running = latch()
      const release = latch()
      broker.expose(async function gate() {
        running.resolve()
        await release.promise
        throw new Error('the first link failed')
      })
      broker.expose(function id(x: unknown) {
        return x
      })
      const pool = new WorkerPool(broker, { concurrency: 2 })
      try {
        await pool.start()
        const q = broker.queue()
        const calls: Array<Promise<Deferred<unknown>>> = []
        let prev: Promise<Deferred<unknown>> = q.gate()
        for (let i = 1; i < 5_000; i++) calls.push((prev = q.id(prev)))
        const links = await Promise.all(calls)
        await running.promise
        release.resolve()
        const last = links[links.length - 1]!
        expect(await last.result(60_000).catch((e: unknown) => e)).to.be.instanceOf(TaskFailure)
        expect(await links[0]!.status()).to.equal('failed')
        expect(await (await q.id('after')).result(10_000)).to.equal('after')
        expect(await broker.size()).to.equal(0)
      } finally {
        await pool.stop({ timeout: 2000 })
        await broker.close()
      }
    })

    it(`${MANY} prioritized dependents become ready at once when their argument completes`, async () => {
      const broker = getBroker(url, uniqueQueue('large-ready'))
      const running = latch()
      const release = latch()
      broker.expose(async function gate() {
        running.resolve()
        await release.promise
        return 1
      })
      const pool = new WorkerPool(broker, { concurrency: 1, prefetch: 0 })
      try {
        await pool.start()
        const q = broker.queue()
        const root = await q.gate()
        const deps = await many(MANY, i => task(q.work, { priority: 1 + (i % 3) })(root, i))
        await running.promise
        // Paused, the completion readies the dependents and nothing takes them.
        await broker.pause()
        release.resolve()
        expect(await root.result(10_000)).to.equal(1)
        await until(async () => (await deps[0]!.status()) === 'enqueued', 10_000, 'ready')
        expect(await broker.size()).to.equal(MANY)
        expect(await deps[MANY - 1]!.status()).to.equal('enqueued')
        expect(await broker.tasks({ status: 'enqueued', limit: 10 })).to.have.length(10)
      } finally {
        await pool.stop({ timeout: 2000 })
        await broker.purge().catch(() => undefined)
        await broker.close()
      }
    })
  })
}
