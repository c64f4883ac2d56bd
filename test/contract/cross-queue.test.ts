import { expect } from 'chai'
import { getBroker, task, TaskSpace, TaskFailure, TaskCancelled } from '../../lib/index.js'
import { backends } from '../helpers/backends.js'
import { uniqueQueue, withWorker } from '../helpers/util.js'

// Deferred arguments on other queues. On a Redis Cluster the queues of one graph are spread over
// the masters (each queue has a slot of its own), so every edge between queues below is a
// hand-over between slots (docs/cluster.md).
for (const backend of backends) {
  describe(`contract: Deferred graphs across queues [${backend.name}]`, () => {
    let url: string
    before(async () => {
      url = await backend.url()
    })

    const space = () =>
      new TaskSpace('', {
        func: (x: unknown) => x,
        add: (a: number, b: number) => a + b,
        sum: (xs: number[]) => xs.reduce((s, x) => s + x, 0),
        fail: (message: string) => {
          throw new Error(message)
        },
      })

    async function workers(n: number) {
      const all: Array<Awaited<ReturnType<typeof withWorker>>> = []
      for (let i = 0; i < n; i++) all.push(await withWorker(url, b => b.expose(space())))
      return {
        queues: all.map(w => w.broker.queue()),
        brokers: all.map(w => w.broker),
        close: () => Promise.all(all.map(w => w.close())),
      }
    }

    it('a chain and a fan-in over three queues resolve with the values', async () => {
      const w = await workers(3)
      try {
        const [qa, qb, qc] = w.queues
        const a1 = qa.func(1)
        const b1 = qb.add(a1, qa.func(2))
        const c1 = qc.sum([b1, a1, qb.func(4), qc.func(5)])
        const a2 = qa.add(c1, b1)
        expect(await (await a2).result(10_000)).to.equal(16)
        expect(await (await c1).result(1000)).to.equal(13)
      } finally {
        await w.close()
      }
    })

    it('a failure goes down the graph across queues; onError pass takes it in', async () => {
      const w = await workers(3)
      try {
        const [qa, qb, qc] = w.queues
        const bad = await qa.fail('no')
        const fails = await qb.add(bad, 1)
        const under = await qc.func(fails)
        const again = await qa.func(under)
        const takes = await task(qc.func, { onError: 'pass' })(bad)
        for (const d of [fails, under, again]) {
          const err = await d.result(10_000).catch((e: unknown) => e)
          expect(err, d.id).to.be.instanceOf(TaskFailure)
          expect((err as TaskFailure).taskId).to.equal(bad.id)
          expect((err as TaskFailure).queue).to.equal(w.brokers[0]!.name)
        }
        const passed = await takes.result(10_000)
        expect(passed).to.be.instanceOf(TaskFailure)
      } finally {
        await w.close()
      }
    })

    it('an argument that ended before its dependent was enqueued gives its outcome', async () => {
      const w = await workers(2)
      try {
        const [qa, qb] = w.queues
        const done = await qa.func(40)
        expect(await done.result(10_000)).to.equal(40)
        const failed = await qa.fail('early')
        await failed.result(10_000).catch(() => undefined)
        expect(await (await qb.add(done, 2)).result(10_000)).to.equal(42)
        const err = await (await qb.func(failed)).result(10_000).catch((e: unknown) => e)
        expect(err).to.be.instanceOf(TaskFailure).with.property('taskId', failed.id)
      } finally {
        await w.close()
      }
    })

    it('cancelling an argument cancels its dependents on other queues, and theirs', async () => {
      const idle = uniqueQueue()
      const broker = getBroker(url, idle)
      const w = await workers(2)
      try {
        const [qb, qc] = w.queues
        const arg = await broker.queue().func(1)
        const dep = await qb.add(arg, arg)
        const under = await qc.func(dep)
        const fine = await qc.func(7)
        expect(await arg.cancel()).to.equal(true)
        for (const d of [dep, under]) {
          const err = await d.result(10_000).catch((e: unknown) => e)
          expect(err, d.id).to.be.instanceOf(TaskCancelled)
          expect((err as TaskCancelled).taskId).to.equal(arg.id)
        }
        expect(await fine.result(10_000)).to.equal(7)
        expect(await w.brokers[0]!.size()).to.equal(0)
      } finally {
        await w.close()
        await broker.close()
      }
    })

    it('many dependents on other queues each take an argument once', async () => {
      const w = await workers(3)
      try {
        const [qa, qb, qc] = w.queues
        const root = await qa.func(1)
        const deps = []
        for (let i = 0; i < 40; i++) deps.push((i % 2 ? qb : qc).add(root, i))
        const all = await qa.sum(deps)
        expect(await all.result(15_000)).to.equal(40 + (39 * 40) / 2)
      } finally {
        await w.close()
      }
    })
  })
}
