/**
 * Listeners that return a promise that rejects (an `async` listener that throws). A listener's
 * synchronous throw was already isolated on every surface, but on a Deferred's `onProgress` and
 * on an EventStream's `on()` a rejection became an unhandled rejection: Node 20 ends the process
 * on one, so one async listener crashed the caller, or the worker it listened in. Each surface now
 * treats a rejection as it treats a throw: dropped on a Deferred and an EventStream (the progress
 * and the stream go on), reported as `pool:error` by a pool.
 */
import { expect } from 'chai'
import {
  ListenerError,
  WorkerPool,
  getBroker,
  type QueueEvent,
  type TaskContext,
} from '../../lib/index.js'
import { backends } from '../helpers/backends.js'
import { latch, uniqueQueue, until } from '../helpers/util.js'

/** Collects the unhandled rejections of the process while `fn` runs, and one turn after it. */
async function unhandledDuring(fn: () => Promise<void>): Promise<unknown[]> {
  const seen: unknown[] = []
  const hooks = process.listeners('unhandledRejection')
  const collect = (reason: unknown) => seen.push(reason)
  // The root hook fails the run on any unhandled rejection: count them here instead, to say which.
  process.removeAllListeners('unhandledRejection')
  process.on('unhandledRejection', collect)
  try {
    await fn()
    // Node reports an unhandled rejection once the microtasks of the turn that made it ran.
    await new Promise(resolve => setImmediate(resolve))
  } finally {
    process.off('unhandledRejection', collect)
    for (const h of hooks) process.on('unhandledRejection', h)
  }
  return seen
}

for (const backend of backends)
  describe(`contract: async listeners that reject [${backend.name}]`, () => {
    let url: string
    before(async () => {
      url = await backend.url()
    })

    it("a deferred.onProgress listener's rejection crashed the process: dropped, the others still hear", async () => {
      const broker = getBroker(url, uniqueQueue('alisten'))
      const go = latch()
      broker.expose(async function steps(this: TaskContext, n: number) {
        for (let i = 1; i <= n; i++) {
          this.progress(i)
          if (i === 1) await go.promise
        }
        return n
      })
      const pool = new WorkerPool(broker, { concurrency: 1 })
      try {
        await pool.start()
        const rejected = latch()
        const heard: unknown[] = []
        const unhandled = await unhandledDuring(async () => {
          const d = await broker.queue().steps(3)
          d.onProgress(async () => {
            rejected.resolve()
            throw new Error('an async progress listener')
          })
          d.onProgress(v => heard.push(v))
          await rejected.promise
          go.resolve()
          expect(await d.result(5_000)).to.equal(3)
          await until(() => heard.at(-1) === 3, 5_000, 'the last progress value')
        })
        expect(unhandled).to.deep.equal([])
        expect(heard[0]).to.equal(1)
      } finally {
        await pool.stop()
        await broker.purge()
        await broker.close()
      }
    })

    it("an EventStream listener's rejection crashed the process: dropped, the stream and the others go on", async () => {
      const broker = getBroker(url, uniqueQueue('alisten'))
      broker.expose(function add(a: number, b: number) {
        return a + b
      })
      const pool = new WorkerPool(broker, { concurrency: 1 })
      const events = broker.events()
      try {
        await pool.start()
        await events.ready
        const seen: QueueEvent[] = []
        let rejections = 0
        const unhandled = await unhandledDuring(async () => {
          events.on('completed', async () => {
            rejections++
            throw new Error('an async event listener')
          })
          events.on('*', e => seen.push(e))
          const q = broker.queue()
          const first = await q.add(1, 2)
          await first.result(5_000)
          const second = await q.add(3, 4)
          await second.result(5_000)
          await until(
            () => seen.some(e => e.type === 'completed' && e.id === second.id),
            5_000,
            "the second task's completed event",
          )
        })
        expect(unhandled).to.deep.equal([])
        expect(rejections).to.equal(2)
      } finally {
        await events.close()
        await pool.stop()
        await broker.purge()
        await broker.close()
      }
    })

    it("pool listeners' rejections, a pool:error listener's own included, are pool:error reports, never unhandled", async () => {
      const broker = getBroker(url, uniqueQueue('alisten'))
      broker.expose(function add(a: number, b: number) {
        return a + b
      })
      const pool = new WorkerPool(broker, { concurrency: 1 })
      const reports: Error[] = []
      pool.on('task:end', async () => {
        throw new Error('an async task:end listener')
      })
      pool.on('pool:error', async err => {
        reports.push(err)
        throw new Error('an async pool:error listener')
      })
      try {
        await pool.start()
        const unhandled = await unhandledDuring(async () => {
          const d = await broker.queue().add(1, 2)
          expect(await d.result(5_000)).to.equal(3)
          await until(() => reports.length >= 1, 5_000, 'the report of the task:end listener')
        })
        expect(unhandled).to.deep.equal([])
        expect(reports[0]).to.be.instanceOf(ListenerError)
        expect((reports[0] as ListenerError).event).to.equal('task:end')
      } finally {
        await pool.stop()
        await broker.purge()
        await broker.close()
      }
    })
  })
