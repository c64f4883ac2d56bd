import { expect } from 'chai'
import {
  getBroker,
  task,
  TaskCancelled,
  TaskFailure,
  WorkerPool,
  type TaskContext,
} from '../../lib/index.js'
import type { Backend, ReservedTask } from '../../lib/backends/backend.js'
import { backends } from '../helpers/backends.js'
import { latch, uniqueQueue, until, withWorker } from '../helpers/util.js'

/**
 * Holds back, until `release` resolves, the backend's replies that hand the pool task `id` (an
 * exchange's reservation or a wait's handover): the pool then reads the reservation after whatever
 * it hears in the meantime, as when the reply comes late on its own connection. The backend does
 * its work as always; only the reply's delivery waits. Returns a function that undoes it.
 */
function holdReservation(
  b: Backend,
  id: string,
  reached: () => void,
  release: Promise<void>,
): () => void {
  const { exchange, waitForWork } = b
  const hold = async (tasks: readonly ReservedTask[]) => {
    if (!tasks.some(t => t.id === id)) return
    reached()
    await release
  }
  b.exchange = async (...args) => {
    const result = await exchange.apply(b, args)
    await hold(result.reserved)
    return result
  }
  b.waitForWork = async (...args) => {
    const handed = await waitForWork.apply(b, args)
    await hold(handed)
    return handed
  }
  return () => {
    b.exchange = exchange
    b.waitForWork = waitForWork
  }
}

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

    it('a running ignoreResult task cancelled: its pool reports task:cancelled, never lease:lost', async () => {
      const started = latch<string>()
      const w = await withWorker(url, b => {
        b.expose(async function slow(this: TaskContext) {
          await new Promise(resolve => this.signal.addEventListener('abort', resolve))
        })
        b.expose(function next(a: number) {
          return a + 1
        })
      })
      const lost: string[] = []
      const cancelled: string[] = []
      w.pool.on('task:start', e => started.resolve(e.id))
      w.pool.on('lease:lost', e => lost.push(e.id))
      w.pool.on('task:cancelled', e => cancelled.push(e.id))
      try {
        const q = w.broker.queue()
        await task(q.slow, { ignoreResult: true })()
        const id = await started.promise
        expect(await w.broker.cancel(id)).to.equal(true)
        await until(() => cancelled.includes(id), 5000, 'task:cancelled')
        await w.pool.onIdle()
        // The run's refused finish went in an exchange that ended before this call's run began
        // (one lane: a reply's refusals are read before what it reserves is started).
        expect(await (await q.next(1)).result(5000)).to.equal(2)
        expect(lost).to.deep.equal([])
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

    it('a task whose cancel is heard before its reservation reaches the worker is not started', async () => {
      const broker = getBroker(url, uniqueQueue())
      let calls = 0
      const started = latch()
      broker.expose(function heard() {
        calls++
        started.resolve()
        return 'ran'
      })
      const { backend: b } = await broker.backend()
      const id = `heard-${uniqueQueue()}`
      const reached = latch()
      const release = latch()
      const undo = holdReservation(b, id, reached.resolve, release.promise)
      const pool = new WorkerPool(broker, { concurrency: 2 })
      try {
        await pool.start()
        const dropped = new Promise<void>(resolve =>
          pool.on('task:cancelled', e => e.id === id && resolve()),
        )
        // Heard after the pool's own listener (listeners run in the order they subscribed).
        const heard = latch()
        const unsubscribe = await b.control(broker.name, m => {
          if (m.type === 'cancel' && m.id === id) heard.resolve()
        })
        const d = await task(broker.queue().heard, { id })()
        await reached.promise // reserved for the pool; the reply waits
        expect(await broker.cancel(id)).to.equal(true)
        await heard.promise
        release.resolve()
        await Promise.race([
          dropped,
          started.promise.then(() => {
            throw new Error('the pool started the task whose cancel it had heard')
          }),
        ])
        unsubscribe()
        const err = await d!.result(5000).catch((e: unknown) => e)
        expect(err).to.be.instanceOf(TaskCancelled)
        // The pool runs what comes next; the cancelled task was never started.
        expect(await (await broker.queue().heard()).result(5000)).to.equal('ran')
        expect(calls).to.equal(1)
        expect(await d!.status()).to.equal('cancelled')
      } finally {
        undo()
        release.resolve()
        await pool.stop({ timeout: 2000 })
        await broker.purge().catch(() => undefined)
        await broker.close()
      }
    })

    it('a cancel the pool heard for a task it never held does not stop a later task under that id', async () => {
      // The id is free again once its task ended. The pool remembers the cancel it heard; the
      // new task's lease, which holds, tells it that this run is not the one cancelled.
      const broker = getBroker(url, uniqueQueue())
      broker.expose(function twice(n: number) {
        return n * 2
      })
      const { backend: b } = await broker.backend()
      const id = `again-${uniqueQueue()}`
      const pool = new WorkerPool(broker, { concurrency: 2 })
      try {
        const first = await task(broker.queue().twice, { id })(1)
        // Reserved by another worker (one that never runs it), before this pool starts.
        const { reserved } = await b.exchange(broker.name, 'elsewhere', [], 1)
        expect(reserved.map(t => t.id)).to.deep.equal([id])
        await pool.start()
        const heard = latch()
        const unsubscribe = await b.control(broker.name, m => {
          if (m.type === 'cancel' && m.id === id) heard.resolve()
        })
        expect(await first!.cancel()).to.equal(true)
        await heard.promise
        unsubscribe()
        const again = await task(broker.queue().twice, { id })(2)
        expect(await again!.result(5000)).to.equal(4)
      } finally {
        await pool.stop({ timeout: 2000 })
        await broker.purge().catch(() => undefined)
        await broker.close()
      }
    })
  })
}
