import { expect } from 'chai'
import {
  getBroker,
  task,
  TaskExpired,
  TaskFailure,
  WorkerPool,
  type TaskContext,
} from '../../lib/index.js'
import { backends } from '../helpers/backends.js'
import { latch, uniqueQueue, withWorker } from '../helpers/util.js'

for (const backend of backends) {
  describe(`contract: leases, attempts, delays, expiry [${backend.name}]`, () => {
    let url: string
    before(async () => {
      url = await backend.url()
    })

    it('a lapsed lease makes the task expired and its waiter gets TaskExpired', async () => {
      const queue = uniqueQueue()
      const broker = getBroker(url, queue)
      try {
        const d = await task(broker.queue().func, { heartrate: 20 })()
        const { backend: b } = await broker.backend()
        expect((await b.exchange(queue, 'dead', [], 1)).reserved).to.have.length(1)
        const pool = new WorkerPool(broker, { sweepInterval: 20 })
        const swept = latch()
        pool.once('pool:swept', () => swept.resolve())
        await pool.start()
        await swept.promise
        const err = await d.result(5000).catch((e: unknown) => e)
        expect(err).to.be.instanceOf(TaskExpired)
        expect((err as TaskExpired).code).to.equal('ERR_WORQ_TASK_EXPIRED')
        expect(await d.status()).to.equal('expired')
        await pool.stop()
      } finally {
        await broker.close()
      }
    })

    it("a worker's heartrate shorter than the task's cuts its lease before it starts: a worker that stops renewing is recovered from within that lease", async () => {
      const queue = uniqueQueue()
      const broker = getBroker(url, queue)
      const started = latch()
      broker.expose(function func(this: TaskContext) {
        started.resolve()
        return new Promise(resolve => this.signal.addEventListener('abort', resolve))
      })
      const { backend: b } = await broker.backend()
      const pool = new WorkerPool(broker, { heartrate: 20, sweepInterval: 20 })
      try {
        await pool.start()
        // The task's own heartrate is the default, 10 s: a lease of 21 s as reserved.
        const d = await broker.queue().func()
        await started.promise
        // From here the pool's renewals do nothing, as a dead worker's: the lease it has is the one
        // cut before the start (2 × 20 + 1000 ms), and the pool's own sweep expires it.
        const startedAt = Date.now()
        b.renew = async () => []
        const err = await d.result(5000).catch((e: unknown) => e)
        expect(err).to.be.instanceOf(TaskExpired)
        expect(Date.now() - startedAt).to.be.below(1040 + 1500)
      } finally {
        delete (b as { renew?: unknown }).renew
        await pool.stop({ timeout: 100 })
        await broker.close()
      }
    })

    it('a worker heartrate is a number of ms from 10: anything else is a TypeError that names it', () => {
      const broker = getBroker(url, uniqueQueue())
      try {
        for (const heartrate of [5, NaN, '100', -1])
          expect(
            () => new WorkerPool(broker, { heartrate: heartrate as number }),
            String(heartrate),
          ).to.throw(TypeError, /`heartrate`/)
      } finally {
        void broker.close()
      }
    })

    it("a stale worker's finish is refused once its lease was swept", async () => {
      const queue = uniqueQueue()
      const broker = getBroker(url, queue)
      try {
        const d = await task(broker.queue().func, { heartrate: 20 })()
        const { backend: b } = await broker.backend()
        const [mine] = (await b.exchange(queue, 'slow', [], 1)).reserved
        await new Promise(r => setTimeout(r, 1100)) // let the lease (2 × 20 + 1000 ms) lapse: time itself is under test
        expect(await b.sweep(queue, 10)).to.equal(1)
        const late = await b.exchange(
          queue,
          'slow',
          [{ id: mine!.id, token: mine!.token, outcome: 'c1' }],
          0,
        )
        expect(late.stale).to.deep.equal([mine!.id])
        expect(
          await b.renew(queue, [{ id: mine!.id, token: mine!.token, heartrate: 20 }]),
        ).to.deep.equal([mine!.id])
        expect(await d.wait(1000)).to.equal(true)
        expect(() => d.value).to.throw(TaskExpired)
      } finally {
        await broker.close()
      }
    })

    it('a release whose token no longer matches is refused without a report (the task never started)', async () => {
      const queue = uniqueQueue()
      const broker = getBroker(url, queue)
      try {
        const d = await broker.queue().func()
        const { backend: b } = await broker.backend()
        const [first] = (await b.exchange(queue, 'w1', [], 1)).reserved
        const release = { id: first!.id, token: first!.token, outcome: '', release: true }
        expect((await b.exchange(queue, 'w1', [release], 0)).stale).to.deep.equal([])
        // The same release again (a resend after a lost reply): refused, quiet, nothing changes.
        expect((await b.exchange(queue, 'w1', [release], 0)).stale).to.deep.equal([])
        expect(await d.status()).to.equal('enqueued')
        const [second] = (await b.exchange(queue, 'w2', [], 2)).reserved
        expect(second!.id).to.equal(first!.id)
        expect(second!.attempt).to.equal(1) // the release left the attempt uncounted, once
        // Now held by another worker: the old release is refused, quiet, and leaves it there.
        expect((await b.exchange(queue, 'w1', [release], 0)).stale).to.deep.equal([])
        expect(await d.status()).to.equal('processing')
        // A finish for good with a token no longer held is still reported.
        const late = await b.exchange(queue, 'w1', [{ ...release, release: undefined }], 0)
        expect(late.stale).to.deep.equal([first!.id])
        const done = await b.exchange(
          queue,
          'w2',
          [{ id: second!.id, token: second!.token, outcome: 'c{"json":2}' }],
          0,
        )
        expect(done.stale).to.deep.equal([])
        expect(await d.result(1000)).to.equal(2)
      } finally {
        await broker.close()
      }
    })

    it('a sweep after a stall gives the leases that lapsed meanwhile one more; later sweeps act on those still lapsed', async () => {
      const queue = uniqueQueue()
      const broker = getBroker(url, queue)
      try {
        const q = broker.queue()
        const live = await task(q.func, { heartrate: 20 })()
        const dead = await task(q.func, { heartrate: 20 })()
        const { backend: b } = await broker.backend()
        const reserved = (await b.exchange(queue, 'w', [], 2)).reserved
        const mine = reserved.find(t => t.id === live.id)!
        expect(await b.sweep(queue, 10)).to.equal(0) // nothing lapsed; the sweep is recorded
        // Both leases (2 × 20 + 1000 ms) lapse while nothing sweeps for longer than 2 × 10 + 1000
        // ms: time itself is under test.
        await new Promise(r => setTimeout(r, 1150))
        expect(await b.sweep(queue, 10)).to.equal(0)
        expect(
          await b.renew(queue, [{ id: mine.id, token: mine.token, heartrate: 20 }]),
        ).to.deep.equal([])
        const finished = await b.exchange(
          queue,
          'w',
          [{ id: mine.id, token: mine.token, outcome: 'c{"json":1}' }],
          0,
        )
        expect(finished.stale).to.deep.equal([])
        expect(await live.result(1000)).to.equal(1)
        // The lease nobody renewed lapses again, and a pool's regular sweeps expire its task.
        const pool = new WorkerPool(broker, { sweepInterval: 20 })
        const swept = latch()
        pool.once('pool:swept', () => swept.resolve())
        await pool.start()
        await swept.promise
        expect(await dead.result(1000).catch((e: unknown) => e)).to.be.instanceOf(TaskExpired)
        await pool.stop()
      } finally {
        await broker.close()
      }
    })

    it('a stall that lapsed more leases than one sweep takes: none is acted on before each had one more', async () => {
      const queue = uniqueQueue()
      const broker = getBroker(url, queue)
      try {
        const q = task(broker.queue().func, { heartrate: 20, ignoreResult: true })
        await Promise.all(Array.from({ length: 1500 }, () => q()))
        const { backend: b } = await broker.backend()
        const reserved = (await b.exchange(queue, 'w', [], 1500)).reserved
        expect(reserved).to.have.length(1500)
        expect(await b.sweep(queue, 10)).to.equal(0)
        // The leases lapse while nothing sweeps (time itself is under test); then sweeps, each past
        // the 10 ms guard of the one before.
        await new Promise(r => setTimeout(r, 1150))
        for (let i = 0; i < 3; i++) {
          expect(await b.sweep(queue, 10)).to.equal(0)
          await new Promise(r => setTimeout(r, 15))
        }
        const leases = reserved.map(t => ({ id: t.id, token: t.token, heartrate: 20 }))
        expect(await b.renew(queue, leases)).to.deep.equal([])
        const done = reserved.map(t => ({ id: t.id, token: t.token, outcome: 'cnull' }))
        expect((await b.exchange(queue, 'w', done, 0)).stale).to.deep.equal([])
      } finally {
        await broker.close()
      }
    })

    it('with attempts left, a lapsed lease runs the task again and the waiter gets the value', async () => {
      const queue = uniqueQueue()
      const broker = getBroker(url, queue)
      broker.expose(function func(attemptsSeen: string) {
        return `ran ${attemptsSeen}`
      })
      try {
        const d = await task(broker.queue().func, { heartrate: 20, attempts: 2 })('again')
        const { backend: b } = await broker.backend()
        const first = (await b.exchange(queue, 'dead', [], 1)).reserved[0]!
        expect(first.attempt).to.equal(1)
        const pool = new WorkerPool(broker, { sweepInterval: 20 })
        const starts: number[] = []
        pool.on('task:start', e => starts.push(e.attempt))
        await pool.start()
        expect(await d.result(5000)).to.equal('ran again')
        expect(starts).to.deep.equal([2])
        await pool.stop()
      } finally {
        await broker.close()
      }
    })

    it('a task that throws runs again while attempts remain; the final failure counts them', async () => {
      let calls = 0
      const w = await withWorker(url, b =>
        b.expose(function flaky(okAt: number) {
          calls++
          if (calls < okAt) throw new Error(`boom ${calls}`)
          return calls
        }),
      )
      try {
        const q = w.broker.queue()
        const ok = await task(q.flaky, {
          attempts: 3,
          backoff: { type: 'exponential', delay: 5, jitter: 0.5 },
        })(3)
        expect(await ok.result(5000)).to.equal(3)
        calls = 0
        const bad = await task(q.flaky, { attempts: 2, backoff: 5 })(99)
        const err = await bad.result(5000).catch((e: unknown) => e)
        expect(err).to.be.instanceOf(TaskFailure)
        expect((err as TaskFailure).attempts).to.equal(2)
        expect((err as Error).message).to.match(/Error: boom 2 \(after 2 attempts\)$/)
      } finally {
        await w.close()
      }
    })

    it('delay and runAt hold a task back; it reports enqueued while it waits', async () => {
      const w = await withWorker(url, b =>
        b.expose(function stamp() {
          return Date.now()
        }),
      )
      try {
        const q = w.broker.queue()
        const t0 = Date.now()
        const a = await task(q.stamp, { delay: 150 })()
        const b = await task(q.stamp, { runAt: new Date(t0 + 200) })()
        expect(await a.status()).to.equal('enqueued')
        expect(await w.broker.size()).to.equal(2)
        expect(await a.result(5000)).to.be.at.least(t0 + 150)
        expect(await b.result(5000)).to.be.at.least(t0 + 200)
      } finally {
        await w.close()
      }
    })

    it('outcomes vanish after resultTimeout and nothing of the task is left', async () => {
      const queue = uniqueQueue()
      const w = await withWorker(
        url,
        b =>
          b.expose(function func() {
            return 1
          }),
        { name: queue },
      )
      try {
        const d = await task(w.broker.queue().func, { resultTimeout: 100 })()
        expect(await d.result(5000)).to.equal(1)
        const { backend: b } = await w.broker.backend()
        expect(await b.status(queue, d.id)).to.deep.include({ status: 'completed' })
        await new Promise(r => setTimeout(r, 150)) // the expiry itself is under test
        expect(await b.status(queue, d.id)).to.equal(null)
        expect(d.value).to.equal(1) // what this Deferred already fetched stays readable
      } finally {
        await w.close()
      }
    })
  })
}
