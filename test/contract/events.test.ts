import { expect } from 'chai'
import {
  getBroker,
  task,
  WorkerPool,
  type QueueEvent,
  type QueueEventOf,
  type TaskContext,
} from '../../lib/index.js'
import { backends } from '../helpers/backends.js'
import { latch, uniqueQueue, until } from '../helpers/util.js'

for (const backend of backends) {
  describe(`contract: events [${backend.name}]`, () => {
    let url: string
    before(async () => {
      url = await backend.url()
    })

    it('a reader sees every event of the queue, per task in the order things happened', async () => {
      const queue = uniqueQueue('events')
      const broker = getBroker(url, queue)
      const gate = latch()
      broker.expose(async function work(this: TaskContext, kind: string) {
        if (kind === 'slow') await gate.promise
        this.progress(0.5)
        if (kind === 'flaky' && this.attempt === 1) throw new Error('first attempt fails')
        if (kind === 'bad') throw new TypeError('bad input')
        return kind
      })
      const events = broker.events()
      const seen: QueueEvent[] = []
      const done = (async () => {
        for await (const e of events) seen.push(e)
      })()
      try {
        await events.ready
        const q = broker.queue()
        const pool = new WorkerPool(broker, { concurrency: 4 })
        await pool.start()
        const ok = await q.work('ok')
        const flaky = await task(q.work, { attempts: 2 })('flaky')
        const bad = await q.work('bad')
        const slow = await q.work('slow')
        const waiting = await task(q.work, { delay: 60_000 })('never')
        const cachedA = await task(q.work, { cache: true })('c')
        await cachedA.result(5000)
        const cachedB = await task(q.work, { cache: true })('c')
        await Promise.all([ok, flaky].map(d => d.result(5000)))
        await bad.wait(5000)
        await until(async () => (await slow.status()) === 'processing', 5000, 'slow to run')
        await slow.cancel()
        await waiting.cancel()
        gate.resolve()
        await broker.pause()
        await broker.resume()
        await until(() => seen.some(e => e.type === 'resumed'), 5000, 'the resume event')
        await pool.stop()
        const of = (id: string) => seen.filter(e => e.id === id).map(e => e.type)
        expect(of(ok.id)).to.deep.equal(['enqueued', 'started', 'progress', 'completed'])
        expect(of(flaky.id)).to.deep.equal([
          'enqueued',
          'started',
          'progress',
          'retrying',
          'started',
          'progress',
          'completed',
        ])
        expect(of(bad.id)).to.deep.equal(['enqueued', 'started', 'progress', 'failed'])
        expect(of(slow.id)).to.deep.equal(['enqueued', 'started', 'cancelled'])
        expect(of(waiting.id)).to.deep.equal(['enqueued', 'cancelled'])
        expect(of(cachedB.id)).to.deep.equal(['enqueued', 'cached'])
        expect(
          seen.filter(e => e.type === 'paused' || e.type === 'resumed').map(e => e.type),
        ).to.deep.equal(['paused', 'resumed'])
        // Fields that fit each type.
        const completed = seen.find(e => e.id === ok.id && e.type === 'completed')!
        expect(completed).to.include({ name: 'work', queue, attempt: 1, workerId: pool.id })
        expect(completed.time).to.be.instanceOf(Date)
        if (completed.type === 'completed') expect(completed.ms).to.be.a('number')
        const retrying = seen.find(e => e.type === 'retrying')!
        if (retrying.type !== 'retrying') throw new Error('not a retrying event')
        expect(retrying.error).to.include({ name: 'Error', message: 'first attempt fails' })
        expect(retrying.delay).to.equal(0)
        const failed = seen.find(e => e.type === 'failed')!
        if (failed.type !== 'failed') throw new Error('not a failed event')
        expect(failed.error).to.include({ name: 'TypeError', message: 'bad input' })
        const progress = seen.find(e => e.type === 'progress')!
        if (progress.type === 'progress') expect(progress.progress).to.equal(0.5)
        const cancelled = seen.find(e => e.id === slow.id && e.type === 'cancelled')!
        if (cancelled.type === 'cancelled')
          expect(cancelled.error).to.include({ code: 'ERR_WORQ_TASK_CANCELLED' })
        // Event ids increase.
        const ids = seen.map(e => Number(e.eventId))
        expect([...ids].sort((a, b) => a - b)).to.deep.equal(ids)
      } finally {
        await events.close()
        await done
        await broker.close()
      }
    })

    it('an expiry is an event too', async () => {
      const queue = uniqueQueue('events')
      const broker = getBroker(url, queue)
      const events = broker.events()
      const expired = latch<QueueEvent>()
      events.on('expired', e => expired.resolve(e))
      try {
        await events.ready
        const d = await task(broker.queue().f, { heartrate: 20 })()
        const { backend: b } = await broker.backend()
        await b.exchange(queue, 'dead', [], 1)
        const pool = new WorkerPool(broker, { sweepInterval: 20 })
        await pool.start()
        const e = await expired.promise
        expect(e).to.include({ id: d.id, type: 'expired', attempt: 1 })
        // From the dead worker's reservation until the sweep gave the task up: at least the lease.
        expect((e as QueueEventOf<'expired'>).ms)
          .to.be.a('number')
          .and.at.least(20)
        await pool.stop()
      } finally {
        await events.close()
        await broker.close()
      }
    })

    it('a reader that resumes from its last eventId misses nothing; one older than what is kept gets a gap', async () => {
      const queue = uniqueQueue('events')
      const broker = getBroker(url, queue)
      try {
        await broker.configure({ eventsMax: 100 })
        const first = broker.events()
        const got: QueueEvent[] = []
        first.on('*', e => got.push(e))
        await first.ready
        const q = broker.queue()
        for (let i = 0; i < 10; i++) await q.f(i)
        await until(() => got.length === 10, 5000, 'ten events')
        await first.close()
        const last = got[4]!.eventId
        for (let i = 10; i < 15; i++) await q.f(i)
        const resumed = broker.events({ since: last })
        const again: QueueEvent[] = []
        resumed.on('*', e => again.push(e))
        await until(() => again.length === 10, 5000, 'the rest')
        expect(again.map(e => e.type)).to.deep.equal(new Array(10).fill('enqueued'))
        expect(again.map(e => Number(e.eventId))).to.deep.equal(
          Array.from({ length: 10 }, (_, i) => Number(last) + 1 + i),
        )
        await resumed.close()
        // Far more than the stream keeps: the oldest position is gone.
        await Promise.all(Array.from({ length: 400 }, (_, i) => q.f(100 + i)))
        const behind = broker.events({ since: got[0]!.eventId })
        const first3: QueueEvent[] = []
        behind.on('*', e => first3.length < 3 && first3.push(e))
        await until(() => first3.length === 3, 5000, 'events after the gap')
        await behind.close()
        expect(first3[0]!.type).to.equal('gap')
        expect(first3[1]!.type).to.equal('enqueued')
        expect(Number(first3[1]!.eventId)).to.be.above(Number(got[0]!.eventId) + 1)
      } finally {
        await broker.purge()
        await broker.close()
      }
    })

    it("a reader opened 'now' on a queue that already has events starts after them; position says where it is", async () => {
      const broker = getBroker(url, uniqueQueue('events'))
      try {
        const fresh = broker.events()
        await fresh.ready
        expect(fresh.position).to.equal('0')
        await fresh.close()
        await broker.pause()
        await broker.resume()
        const events = broker.events()
        await events.ready
        expect(events.position).to.equal('2')
        const seen: QueueEvent[] = []
        events.on('*', e => seen.push(e))
        await broker.pause()
        await until(() => seen.length > 0, 5000, 'the pause event')
        expect(seen.map(e => e.type)).to.deep.equal(['paused'])
        expect(events.position).to.equal(seen[0]!.eventId)
        await events.close()
      } finally {
        await broker.close()
      }
    })

    it('with events off, no events are kept', async () => {
      const queue = uniqueQueue('events')
      const broker = getBroker(url, queue)
      try {
        await broker.configure({ events: false })
        const events = broker.events()
        const got: QueueEvent[] = []
        events.on('*', e => got.push(e))
        await events.ready
        await broker.queue().f()
        await new Promise(r => setTimeout(r, 200)) // an event would have arrived by now
        expect(got).to.deep.equal([])
        await events.close()
        expect(() => broker.events({ since: 'yesterday' })).to.throw(TypeError, /`since`/)
      } finally {
        await broker.purge()
        await broker.close()
      }
    })

    it('turning events off keeps the events recorded before; metrics off keeps the counts made before', async () => {
      const queue = uniqueQueue('events')
      const broker = getBroker(url, queue)
      broker.expose(function g(n: number) {
        return n
      })
      const pool = new WorkerPool(broker, { concurrency: 2 })
      try {
        const q = broker.queue()
        const ds = await Promise.all([q.g(1), q.g(2), q.g(3)])
        await pool.start()
        for (const d of ds) await d.result(10_000)
        await pool.stop()
        await broker.configure({ events: false, metrics: false })
        const events = broker.events({ since: '0' })
        const got: QueueEvent[] = []
        events.on('*', e => got.push(e))
        try {
          await until(() => got.length >= 9, 5000, 'the events recorded while events were on')
        } finally {
          await events.close()
        }
        const count = (type: string) => got.filter(e => e.type === type).length
        expect([count('enqueued'), count('started'), count('completed')]).to.deep.equal([3, 3, 3])
        expect((await broker.metrics()).totals.completed).to.equal(3)
      } finally {
        await pool.stop()
        await broker.purge()
        await broker.close()
      }
    })
  })
}
