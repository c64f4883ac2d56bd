import { expect } from 'chai'
import { getBroker, task, TaskCancelled, TaskFailure, type TaskContext } from '../../lib/index.js'
import { backends } from '../helpers/backends.js'
import { latch, uniqueQueue, until, withWorker } from '../helpers/util.js'

/** The documented bound on how long a running task takes to see its cancel (docs/tasks.md). */
const CANCEL_LATENCY_MS = 1000

for (const backend of backends) {
  describe(`contract: cancelling tasks [${backend.name}]`, () => {
    let url: string
    before(async () => {
      url = await backend.url()
    })

    it('cancels a running task: its signal aborts with TaskCancelled, the waiter gets TaskCancelled, its result is dropped, no retry', async () => {
      const started = latch()
      const aborted = latch<{ reason: unknown; after: number }>()
      let calls = 0
      let cancelledAt = 0
      const w = await withWorker(url, b =>
        b.expose(async function slow(this: TaskContext) {
          calls++
          started.resolve()
          await new Promise<void>(resolve =>
            this.signal.addEventListener('abort', () => {
              aborted.resolve({ reason: this.signal.reason, after: Date.now() - cancelledAt })
              resolve()
            }),
          )
          return 'returned after the cancel'
        }),
      )
      try {
        const d = await task(w.broker.queue().slow, { attempts: 3 })()
        await started.promise
        cancelledAt = Date.now()
        expect(await d!.cancel()).to.equal(true)
        const { reason, after } = await aborted.promise
        expect(reason).to.be.instanceOf(TaskCancelled)
        expect(after).to.be.below(CANCEL_LATENCY_MS)
        const err = await d!.result(5000).catch((e: unknown) => e)
        expect(err).to.be.instanceOf(TaskCancelled)
        expect((err as TaskCancelled).code).to.equal('ERR_WORQ_TASK_CANCELLED')
        await w.pool.onIdle()
        // The run's return and its refused finish change nothing; it is not run again.
        await new Promise(r => setTimeout(r, 100))
        expect(await d!.status()).to.equal('cancelled')
        expect((await w.broker.task(d!.id))!.status).to.equal('cancelled')
        expect(calls).to.equal(1)
        expect(await d!.cancel()).to.equal(false)
      } finally {
        await w.close()
      }
    })

    it('the cancel of a running task cascades: onError fail fails the dependent, pass hands it TaskCancelled', async () => {
      const started = latch()
      const w = await withWorker(url, b => {
        b.expose(async function slow(this: TaskContext) {
          started.resolve()
          await new Promise(resolve => this.signal.addEventListener('abort', resolve))
          return 1
        })
        b.expose(function describe(v: unknown) {
          return v instanceof TaskFailure ? `${v.code}` : `value ${String(v)}`
        })
      })
      try {
        const q = w.broker.queue()
        const arg = await q.slow()
        const failing = await q.describe(arg)
        const passing = await task(q.describe, { onError: 'pass' })(arg)
        await started.promise
        expect(await w.broker.cancel(arg.id)).to.equal(true)
        expect(await failing.result(5000).catch((e: unknown) => e)).to.be.instanceOf(TaskCancelled)
        expect(await passing!.result(5000)).to.equal('ERR_WORQ_TASK_CANCELLED')
      } finally {
        await w.close()
      }
    })

    it('cancels pending, enqueued and delayed tasks; unknown or finished ids give false', async () => {
      const broker = getBroker(url, uniqueQueue('cancel'))
      try {
        const q = broker.queue()
        const enqueued = await q.f(1)
        const delayed = await task(q.f, { delay: 60_000 })(2)
        const pending = await q.f(enqueued)
        for (const d of [pending, delayed, enqueued]) {
          expect(await broker.cancel(d!.id)).to.equal(true)
          expect(await d!.status()).to.equal('cancelled')
        }
        expect(await broker.cancel('no-such-task')).to.equal(false)
        expect(await broker.cancel(enqueued.id)).to.equal(false)
        expect(await broker.size()).to.equal(0)
      } finally {
        await broker.close()
      }
    })

    it('a cancel racing the task’s own finish ends with exactly one outcome', async () => {
      const w = await withWorker(
        url,
        b =>
          b.expose(async function quick(n: number) {
            return n
          }),
        { concurrency: 8 },
      )
      try {
        const q = w.broker.queue()
        const tries = await Promise.all(
          Array.from({ length: 60 }, async (_, i) => {
            const d = await q.quick(i)
            // Let some run first, cancel others at once.
            if (i % 3 === 0) await new Promise(r => setImmediate(r))
            const cancelled = await d.cancel()
            const done = await d.wait(5000)
            return { i, cancelled, done, status: await d.status(), info: await d.info() }
          }),
        )
        for (const t of tries) {
          expect(t.done, `task ${t.i}`).to.equal(true)
          expect(t.status, `task ${t.i}`).to.equal(t.cancelled ? 'cancelled' : 'completed')
          expect(t.info!.status).to.equal(t.status)
          if (!t.cancelled) expect(t.info!.value).to.equal(t.i)
        }
        // Both kinds of ending happened, or the race was not exercised.
        expect(tries.some(t => t.cancelled)).to.equal(true)
        await until(() => w.pool.running === 0, 5000, 'the pool to settle')
      } finally {
        await w.close()
      }
    })

    it('a prefetched task cancelled before it starts never runs', async () => {
      const gate = latch()
      const ran: number[] = []
      const w = await withWorker(
        url,
        b =>
          b.expose(async function step(n: number) {
            ran.push(n)
            if (n === 0) await gate.promise
            return n
          }),
        { concurrency: 1, prefetch: 4 },
      )
      try {
        const q = w.broker.queue()
        for (let i = 10; i < 15; i++) await (await q.step(i)).result(5000) // short: prefetch on
        const first = await q.step(0)
        await until(() => ran.includes(0), 5000, 'the first to start')
        const second = await q.step(1)
        await until(async () => (await w.broker.size()) === 0, 5000, 'the prefetch')
        expect(await second.cancel()).to.equal(true)
        gate.resolve()
        expect(await first.result(5000)).to.equal(0)
        const third = await q.step(2)
        expect(await third.result(5000)).to.equal(2)
        expect(ran).to.not.include(1)
        expect(await second.status()).to.equal('cancelled')
      } finally {
        await w.close()
      }
    })
  })
}
