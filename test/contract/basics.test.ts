import { expect } from 'chai'
import { inspect } from 'node:util'
import {
  getBroker,
  getQueue,
  task,
  TaskSpace,
  TaskFailure,
  NoResultYet,
  WaitTimeout,
  WorkerPool,
  type Deferred,
} from '../../lib/index.js'
import { backends } from '../helpers/backends.js'
import { latch, uniqueQueue, withWorker } from '../helpers/util.js'

for (const backend of backends) {
  describe(`contract: basics [${backend.name}]`, () => {
    let url: string
    before(async () => {
      url = await backend.url()
    })

    it('fire-and-forget: a call runs without anyone waiting', async () => {
      const seen = latch<string>()
      const w = await withWorker(url, b =>
        b.expose(function func(arg: string) {
          seen.resolve(arg)
        }),
      )
      try {
        await w.broker.queue().func('arg')
        expect(await seen.promise).to.equal('arg')
      } finally {
        await w.close()
      }
    })

    it('waits for and reads a result; reading does not consume it', async () => {
      const math = new TaskSpace('math', { add: (a: number, b: number) => a + b })
      const w = await withWorker(url, b => b.expose(math))
      try {
        const q = w.broker.queue<typeof math>()
        const d = await q.math.add(1, 2)
        expect(await d.wait(5000)).to.equal(true)
        expect(d.value).to.equal(3)
        expect(d.value).to.equal(3)
        expect(await d.result(5000)).to.equal(3)
        expect(await d.status()).to.equal('completed')
        expect(String(d)).to.match(/^<Deferred math\.add \[.+:.+\] completed>$/)
      } finally {
        await w.close()
      }
    })

    it('ignoreResult resolves to undefined and still runs the task', async () => {
      const seen = latch<number>()
      const w = await withWorker(url, b =>
        b.expose(function func(n: number) {
          seen.resolve(n)
        }),
      )
      try {
        const q = w.broker.queue()
        expect(await task(q.func, { ignoreResult: true })(3)).to.equal(undefined)
        expect(await seen.promise).to.equal(3)
        const q2 = w.broker.queue('', { ignoreResult: true })
        expect(await q2.func(4)).to.equal(undefined)
      } finally {
        await w.close()
      }
    })

    it('reports status enqueued → processing → completed', async () => {
      const started = latch()
      const release = latch()
      const broker = getBroker(url, uniqueQueue())
      try {
        broker.expose(async function func(x: string) {
          started.resolve()
          await release.promise
          return x
        })
        const d = await broker.queue().func('arg')
        expect(await d.status()).to.equal('enqueued')
        const pool = new WorkerPool(broker, { concurrency: 1 })
        await pool.start()
        await started.promise
        expect(await d.status()).to.equal('processing')
        expect(await d.wait(0)).to.equal(false)
        release.resolve()
        expect(await d.result(5000)).to.equal('arg')
        expect(await d.status()).to.equal('completed')
        await pool.stop()
      } finally {
        await broker.close()
      }
    })

    it('a name no worker exposes fails as a TaskFailure whose remote class is NoSuchTask', async () => {
      const w = await withWorker(url, () => undefined)
      try {
        const d = await w.broker.queue().func()
        expect(await d.wait(5000)).to.equal(true)
        expect(await d.status()).to.equal('failed')
        expect(() => d.value)
          .to.throw(TaskFailure)
          .with.property('remote')
          .that.has.property('name', 'NoSuchTask')
      } finally {
        await w.close()
      }
    })

    it('a task error becomes a TaskFailure carrying name, queue, id and the remote error', async () => {
      const w = await withWorker(url, b =>
        b.expose(function func() {
          throw new RangeError('fail!', { cause: new Error('root') })
        }),
      )
      try {
        const d = await w.broker.queue().func()
        const err = await d.result(5000).then(
          () => expect.fail('should fail'),
          (e: unknown) => e,
        )
        expect(err).to.be.instanceOf(TaskFailure)
        const f = err as TaskFailure
        expect(f.code).to.equal('ERR_WORQ_TASK_FAILED')
        expect(f.message).to.equal(`func [${w.broker.name}:${d.id}] RangeError: fail!`)
        expect(f.taskName).to.equal('func')
        expect(f.queue).to.equal(w.broker.name)
        expect(f.taskId).to.equal(d.id)
        expect(f.remote.name).to.equal('RangeError')
        expect(f.remote.stack).to.include('fail!')
        expect((f.remote.cause as Error).message).to.equal('root')
      } finally {
        await w.close()
      }
    })

    it('value before any outcome throws NoResultYet; result(ms) times out with WaitTimeout', async () => {
      const broker = getBroker(url, uniqueQueue())
      try {
        const d: Deferred<unknown> = await broker.queue().nobody()
        expect(() => d.value).to.throw(NoResultYet, /wait/)
        expect(await d.wait(10)).to.equal(false)
        const err = await d.result(10).catch((e: unknown) => e)
        expect(err).to.be.instanceOf(WaitTimeout)
        expect((err as WaitTimeout).code).to.equal('ERR_WORQ_WAIT_TIMEOUT')
        expect(await d.wait(-1).catch((e: unknown) => e))
          .to.be.instanceOf(TypeError)
          .with.property('message')
          .that.matches(/Expected `ms`/)
      } finally {
        await broker.purge()
        await broker.close()
      }
    })

    it('the Proxy never traps then, symbols or util.inspect.custom', async () => {
      const q = getQueue(url, uniqueQueue())
      try {
        expect((q as any).then).to.equal(undefined)
        expect((q as any).math.then).to.equal(undefined)
        expect((q as any)[Symbol.iterator]).to.equal(undefined)
        expect((q as any)[inspect.custom]).to.equal(undefined)
        expect(typeof q[Symbol.asyncDispose]).to.equal('function')
        expect(inspect(q)).to.be.a('string')
        expect(await Promise.resolve(q)).to.equal(q)
      } finally {
        await q[Symbol.asyncDispose]()
      }
    })

    it('constructor, toString and hasOwnProperty are task names, and fail as no such task', async () => {
      const w = await withWorker(url, () => undefined)
      try {
        const q = w.broker.queue() as any
        for (const d of [
          await q.constructor(),
          await q.toString(),
          // eslint-disable-next-line no-prototype-builtins -- the point: it is a task name here
          await q.ns.hasOwnProperty('x'),
        ]) {
          expect(await d.wait(5000)).to.equal(true)
          expect(() => d.value).to.throw(TaskFailure, /NoSuchTask/)
        }
      } finally {
        await w.close()
      }
    })

    it('results of many kinds survive: Date, Map, Set, BigInt, undefined, nested', async () => {
      const value = {
        when: new Date(0),
        map: new Map([['a', 1]]),
        set: new Set([1, 2]),
        big: 10n ** 20n,
        nothing: undefined,
        list: [1, { x: 'y' }],
      }
      const w = await withWorker(url, b =>
        b.expose(function echo(v: unknown) {
          return v
        }),
      )
      try {
        const d = await w.broker.queue().echo(value)
        expect(await d.result(5000)).to.deep.equal(value)
      } finally {
        await w.close()
      }
    })

    it('a result that cannot be sent faithfully fails its task, and the worker goes on', async () => {
      class Point {
        x = 1
      }
      const w = await withWorker(url, b =>
        b
          .expose(function fn() {
            return () => 1
          })
          .expose(function sym() {
            return { s: Symbol('x') }
          })
          .expose(function cls() {
            return new Point()
          })
          .expose(function ok() {
            return 'fine'
          }),
      )
      try {
        const q = w.broker.queue()
        for (const [d, what] of [
          [await q.fn(), /function/],
          [await q.sym(), /symbol/],
          [await q.cls(), /class Point/],
        ] as const) {
          expect(await d.wait(5000)).to.equal(true)
          expect(() => d.value)
            .to.throw(TaskFailure, what)
            .with.nested.property('remote.name', 'UnserializableResult')
        }
        expect(await (await q.ok()).result(5000)).to.equal('fine')
      } finally {
        await w.close()
      }
    })

    it('arguments that cannot be sent are refused at the call with a TypeError', async () => {
      const q = getQueue(url, uniqueQueue())
      try {
        let err: unknown
        try {
          await q.fn({ cb: () => 1 })
        } catch (e) {
          err = e
        }
        expect(err).to.be.instanceOf(TypeError)
        expect((err as Error).message).to.match(/args\[0\]\.cb is a function/)
      } finally {
        await q[Symbol.asyncDispose]()
      }
    })
  })
}
