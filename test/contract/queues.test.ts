import { expect } from 'chai'
import {
  getBroker,
  getQueue,
  task,
  TaskSpace,
  DuplicateTask,
  TaskCancelled,
  WorkerPool,
  type QueueEvent,
} from '../../lib/index.js'
import { PURGE_STEP } from '../../lib/backends/purge-steps.js'
import { backends } from '../helpers/backends.js'
import { latch, uniqueQueue, until, withWorker } from '../helpers/util.js'

for (const backend of backends) {
  describe(`contract: queues, names and ids [${backend.name}]`, () => {
    let url: string
    before(async () => {
      url = await backend.url()
    })

    it('named queues are routed only to their own workers', async () => {
      const foo = await withWorker(
        url,
        b =>
          b.expose(function which() {
            return 'foo'
          }),
        { name: uniqueQueue('foo') },
      )
      const bar = await withWorker(
        url,
        b =>
          b.expose(function which() {
            return 'bar'
          }),
        { name: uniqueQueue('bar') },
      )
      try {
        const results = await Promise.all(
          [foo, bar, foo, bar].map(async w => (await w.broker.queue().which()).result(5000)),
        )
        expect(results).to.deep.equal(['foo', 'bar', 'foo', 'bar'])
      } finally {
        await foo.close()
        await bar.close()
      }
    })

    it('namespaces: module.path, and foo / foo.bar / foo.bar.baz with the same function names', async () => {
      const spaces = ['module.path', 'foo', 'foo.bar', 'foo.bar.baz'].map(
        name => new TaskSpace(name, { join: (...xs: string[]) => `${name}:${xs.join('')}` }),
      )
      const w = await withWorker(url, b => spaces.forEach(s => b.expose(s)))
      try {
        const q = w.broker.queue() as any
        const got = await Promise.all(
          [
            q.module.path.join('a'),
            q.foo.join('b'),
            q.foo.bar.join('c'),
            q.foo.bar.baz.join('d'),
          ].map(async p => (await p).result(5000)),
        )
        expect(got).to.deep.equal(['module.path:a', 'foo:b', 'foo.bar:c', 'foo.bar.baz:d'])
        const sub = w.broker.queue('foo.bar') as any
        expect(await (await sub.baz.join('e')).result(5000)).to.equal('foo.bar.baz:e')
      } finally {
        await w.close()
      }
    })

    it('a bound method can be exposed and keeps its object', async () => {
      class Counter {
        value = 0
        update_value(n: number) {
          this.value += n
          return this.value
        }
      }
      const obj = new Counter()
      const w = await withWorker(url, b => b.expose(obj.update_value.bind(obj)))
      try {
        expect(await (await w.broker.queue().update_value(2)).result(5000)).to.equal(2)
        expect(obj.value).to.equal(2)
      } finally {
        await w.close()
      }
    })

    it('expose twice throws unless replace; anonymous functions need a name', () => {
      const broker = getBroker(url, uniqueQueue())
      broker.expose(function f() {
        return 1
      })
      expect(() =>
        broker.expose(function f() {
          return 2
        }),
      ).to.throw(TypeError, /replace/)
      broker.expose(
        function f() {
          return 2
        },
        { replace: true },
      )
      expect(() => new TaskSpace('x').task(() => 1)).to.throw(TypeError, /named function/)
      void broker.close()
    })

    for (const [kind, id] of [
      ['string', 'int'],
      ['function', (arg: unknown) => typeof arg],
    ] as const) {
      it(`a duplicate id (${kind}) is refused while enqueued or processing, and free once finished`, async () => {
        const started = latch()
        const release = latch()
        const broker = getBroker(url, uniqueQueue())
        broker.expose(async function func(n: number) {
          started.resolve()
          await release.promise
          return n
        })
        try {
          const f = task(broker.queue().func, { id: id as any })
          const first = await f(1)
          expect(first.id).to.equal(typeof id === 'string' ? id : 'number')
          const dup = await f(2).catch((e: unknown) => e)
          expect(dup).to.be.instanceOf(DuplicateTask)
          expect((dup as Error).message).to.match(
            /^func \[.+:(int|number)\] cannot enqueue task with duplicate id/,
          )
          const pool = new WorkerPool(broker, { concurrency: 1 })
          await pool.start()
          await started.promise
          expect(await first.status()).to.equal('processing')
          expect(await f(3).catch((e: unknown) => e)).to.be.instanceOf(DuplicateTask)
          release.resolve()
          expect(await first.result(5000)).to.equal(1)
          const again = await f(4)
          expect(await again.result(5000)).to.equal(4)
          await pool.stop()
        } finally {
          await broker.close()
        }
      })
    }

    it('size counts enqueued tasks and pending dependents; results leave it', async () => {
      const broker = getBroker(url, uniqueQueue())
      broker.expose(function func(x: unknown) {
        return x
      })
      try {
        const q = broker.queue()
        expect(await broker.size()).to.equal(0)
        const r1 = await q.func(1)
        expect(await broker.size()).to.equal(1)
        const r2 = await q.func(r1)
        await q.func(2, { later: true })
        expect(await broker.size()).to.equal(3)
        const pool = new WorkerPool(broker)
        await pool.start()
        expect(await r2.result(5000)).to.equal(1)
        await pool.onIdle()
        expect(await broker.size()).to.equal(0)
        await pool.stop()
      } finally {
        await broker.close()
      }
    })

    it('purge counts every task of a chain of pending dependents, whichever the cascade ends first', async () => {
      const broker = getBroker(url, uniqueQueue('chain'))
      try {
        const q = broker.queue()
        // Several chains: the order a backend takes its pending tasks in differs (a set on
        // Redis), and a dependent ended by its argument's cascade is still counted.
        let total = 0
        for (let c = 0; c < 4; c++) {
          let d = await q.func(`head ${c}`)
          total++
          for (let i = 0; i < 4; i++) {
            d = await q.func(d)
            total++
          }
        }
        expect(await broker.size()).to.equal(total)
        expect(await broker.purge()).to.equal(total)
        expect(await broker.size()).to.equal(0)
      } finally {
        await broker.close()
      }
    })

    it('purge discards waiting tasks; their Deferreds and dependents become cancelled', async () => {
      const broker = getBroker(url, uniqueQueue())
      try {
        const q = broker.queue()
        const a = await q.func(1)
        const b = await q.func(a)
        expect(await broker.size()).to.equal(2)
        expect(await broker.purge()).to.equal(2)
        expect(await broker.size()).to.equal(0)
        for (const d of [a, b]) {
          expect(await d.status()).to.equal('cancelled')
          expect(() => d.value).to.throw(TaskCancelled)
        }
      } finally {
        await broker.close()
      }
    })

    // A purge ends most tasks set-based on PostgreSQL (docs/postgres.md, "cancel, purge") and one
    // by one elsewhere: either way each task ends as a cancel ends it.
    it('purge ends each task as a cancel does: its waiter, one `cancelled` event, the count, a cached call', async () => {
      const broker = getBroker(url, uniqueQueue('purge-as-cancel'))
      const events = broker.events()
      const cancelled: QueueEvent[] = []
      const reading = (async () => {
        for await (const e of events) if (e.type === 'cancelled') cancelled.push(e)
      })()
      try {
        await events.ready
        const q = broker.queue()
        // More than a step's worth of plain tasks, so that the purge takes two steps at least.
        const plain = await Promise.all(Array.from({ length: PURGE_STEP + 3 }, (_, i) => q.func(i)))
        const delayed = await task(q.func, { delay: 60_000 })('later')
        await task(q.func, { ignoreResult: true })('unkept')
        const argument = await q.func('argument')
        const dependent = await q.func(argument)
        const cached = await task(q.func, { cache: true })('cached')
        const all = [...plain, delayed, argument, dependent, cached]
        const total = all.length + 1
        // Pending tasks go first on every backend: the dependent is cancelled, and counted, itself.
        expect(await broker.purge()).to.equal(total)
        expect(await broker.size()).to.equal(0)
        for (const d of all)
          expect(await d.result(5000).catch((e: unknown) => e), d.id).to.be.instanceOf(
            TaskCancelled,
          )
        await until(() => cancelled.length >= total, 10_000, 'a cancelled event of each task')
        const ids = cancelled.map(e => e.id)
        expect(new Set(ids).size, 'distinct ids').to.equal(ids.length)
        expect(ids).to.include.members(all.map(d => d.id))
        expect(ids).to.have.length(total)
        const first = cancelled.find(e => e.id === plain[0]!.id)!
        expect(first).to.include({ name: 'func' })
        if (first.type === 'cancelled')
          expect(first.error).to.include({ code: 'ERR_WORQ_TASK_CANCELLED' })
        const m = await broker.metrics({ minutes: 5 })
        expect(m.totals.cancelled).to.equal(total)
        // The cached call's flight ended with it: the same call made again is a task of its own.
        const again = await task(q.func, { cache: true })('cached')
        expect(again.id).to.not.equal(cached.id)
        expect(await again.status()).to.equal('enqueued')
      } finally {
        await events.close()
        await reading
        await broker.purge()
        await broker.close()
      }
    })

    it('cancel() discards a task not yet running, and not one that finished', async () => {
      const w = await withWorker(url, b =>
        b.expose(function func(x: unknown) {
          return x
        }),
      )
      await w.pool.stop()
      const broker = w.broker
      try {
        const d = await broker.queue().func(1)
        expect(await d.cancel()).to.equal(true)
        expect(await d.status()).to.equal('cancelled')
        expect(await d.cancel()).to.equal(false)
      } finally {
        await broker.close()
      }
    })

    it('brokers with the same URL share one backend; getQueue is broker.queue', async () => {
      const name = uniqueQueue()
      const w = await withWorker(
        url,
        b =>
          b.expose(function func() {
            return 'ok'
          }),
        { name },
      )
      const q = getQueue(url, name)
      try {
        expect(await (await q.func()).result(5000)).to.equal('ok')
      } finally {
        await q[Symbol.asyncDispose]()
        await w.close()
      }
    })
  })
}
