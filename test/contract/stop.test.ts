import { expect } from 'chai'
import {
  getBroker,
  task,
  TaskExpired,
  WorkerPool,
  type QueueEvent,
  type TaskContext,
} from '../../lib/index.js'
import { backends } from '../helpers/backends.js'
import { latch, until, uniqueQueue, withWorker } from '../helpers/util.js'

for (const backend of backends) {
  describe(`contract: stopping a pool [${backend.name}]`, () => {
    let url: string
    before(async () => {
      url = await backend.url()
    })

    it('stop() lets running tasks finish within its timeout', async () => {
      const started = latch()
      const release = latch()
      const w = await withWorker(url, b =>
        b.expose(async function slow() {
          started.resolve()
          await release.promise
          return 'done'
        }),
      )
      try {
        const d = await w.broker.queue().slow()
        await started.promise
        const stopping = w.pool.stop({ timeout: 5000 })
        release.resolve()
        await stopping
        expect(await d.result(1000)).to.equal('done')
      } finally {
        await w.close()
      }
    })

    it('stop() past its timeout hands a running task back (attempts left) or expires it', async () => {
      const queue = uniqueQueue()
      const broker = getBroker(url, queue)
      let hanging = 0
      const allStarted = latch()
      // Hangs on its first attempt, ignoring its signal; answers on a later one.
      broker.expose(function hang(this: TaskContext) {
        if (this.attempt > 1) return `attempt ${this.attempt}`
        if (++hanging === 3) allStarted.resolve()
        return new Promise(() => undefined)
      })
      const events = broker.events()
      const heard: QueueEvent[] = []
      const reading = (async () => {
        for await (const e of events) heard.push(e)
      })()
      await events.ready
      const pool = new WorkerPool(broker, { concurrency: 4, prefetch: 0 })
      try {
        await pool.start()
        const q = broker.queue()
        const once = [await q.hang(), await q.hang()]
        const twice = await task(q.hang, { attempts: 2, backoff: 60_000 })()
        await allStarted.promise
        await pool.stop({ timeout: 200 })
        for (const d of once) {
          expect(await d.wait(1000)).to.equal(true)
          expect(() => d.value).to.throw(TaskExpired, /stop timeout/)
        }
        // Back in line at once (no backoff), its run counted, and its event says why.
        expect(await twice.status()).to.equal('enqueued')
        await until(() => heard.some(e => e.type === 'retrying'), 5000, 'the retrying event')
        const retrying = heard.find(e => e.id === twice.id && e.type === 'retrying')!
        if (retrying.type !== 'retrying') throw new Error('not a retrying event')
        expect(retrying.attempt).to.equal(1)
        expect(retrying.error.name).to.equal('TaskExpired')
        expect(retrying.error.message).to.match(/the worker stopped before the task finished/)
        await until(
          () => heard.filter(e => e.type === 'expired').length === 2,
          5000,
          'the expired events',
        )
        for (const e of heard.filter(e => e.type === 'expired'))
          if (e.type === 'expired') expect(e.error.message).to.match(/stop timeout/)
        const next = new WorkerPool(broker, { concurrency: 1 })
        await next.start()
        expect(await twice.result(5000)).to.equal('attempt 2')
        await next.stop()
      } finally {
        await pool.stop({ timeout: 0 })
        await events.close()
        await reading
        await broker.close()
      }
    })

    it('tasks handed back at stop end with task:end (expired, retry) and wake onIdle() waiters', async () => {
      const queue = uniqueQueue()
      const broker = getBroker(url, queue)
      let hanging = 0
      const allStarted = latch()
      broker.expose(function hang() {
        if (++hanging === 2) allStarted.resolve()
        return new Promise(() => undefined)
      })
      const pool = new WorkerPool(broker, { concurrency: 2, prefetch: 0 })
      const ends: Array<{ id: string; status: string }> = []
      pool.on('task:end', e => ends.push({ id: e.id, status: e.status }))
      try {
        await pool.start()
        const q = broker.queue()
        const once = await q.hang()
        const twice = await task(q.hang, { attempts: 2 })()
        await allStarted.promise
        let idle = false
        const idled = pool.onIdle().then(() => (idle = true))
        await pool.stop({ timeout: 50 })
        expect(idle, 'onIdle() resolved by the time stop() did').to.equal(true)
        await idled
        expect(pool.running).to.equal(0)
        expect(ends).to.have.deep.members([
          { id: once.id, status: 'expired' },
          { id: twice.id, status: 'retry' },
        ])
      } finally {
        await broker.close()
      }
    })

    it('a finish the backend cannot read is refused alone: the rest of its batch is applied and the task is not lost', async () => {
      const queue = uniqueQueue()
      const broker = getBroker(url, queue)
      try {
        const q = broker.queue()
        const first = await q.func()
        const unreadable = await task(q.func, { attempts: 2, heartrate: 20, backoff: 0 })()
        const last = await q.func()
        const { backend: b } = await broker.backend()
        const reserved = (await b.exchange(queue, 'w', [], 3)).reserved
        const token = (id: string) => reserved.find(t => t.id === id)!.token
        const { stale } = await b.exchange(
          queue,
          'w',
          [
            { id: first.id, token: token(first.id), outcome: 'c{"json":1}' },
            { id: unreadable.id, token: token(unreadable.id), outcome: '', retryAt: Date.now() },
            { id: last.id, token: token(last.id), outcome: 'c{"json":3}' },
          ],
          0,
        )
        expect(await first.result(1000)).to.equal(1)
        expect(await last.result(1000)).to.equal(3)
        // Refused (reported stale; its lease lapses and the sweep puts it back), or taken as a
        // retry whose failure is unknown (Redis): either way it runs again.
        expect(stale.filter(id => id !== unreadable.id)).to.deep.equal([])
        await until(
          async () => (await b.sweep(queue, 10)) >= 0 && (await unreadable.status()) === 'enqueued',
          5000,
          'the task back in line',
        )
        const again = (await b.exchange(queue, 'w', [], 1)).reserved
        expect(again.map(t => [t.id, t.attempt])).to.deep.equal([[unreadable.id, 2]])
      } finally {
        await broker.close()
      }
    })

    it('a final outcome the backend cannot read is refused alone, not stored to fail every read of the task', async () => {
      const queue = uniqueQueue()
      const broker = getBroker(url, queue)
      // No status, an unknown one, a failure that is not JSON, JSON that is not a failure record.
      const unreadable = ['', 'z{}', 'fnot json', 'f{"json":1}']
      try {
        const q = broker.queue()
        const first = await q.func()
        const bad = await Promise.all(
          unreadable.map(() => task(q.func, { attempts: 2, heartrate: 20, backoff: 0 })()),
        )
        const last = await q.func()
        const { backend: b } = await broker.backend()
        const reserved = (await b.exchange(queue, 'w', [], 2 + bad.length)).reserved
        const token = (id: string) => reserved.find(t => t.id === id)!.token
        const { stale } = await b.exchange(
          queue,
          'w',
          [
            { id: first.id, token: token(first.id), outcome: 'c{"json":1}' },
            ...bad.map((d, i) => ({ id: d.id, token: token(d.id), outcome: unreadable[i]! })),
            { id: last.id, token: token(last.id), outcome: 'c{"json":3}' },
          ],
          0,
        )
        expect(await first.result(1000)).to.equal(1)
        expect(await last.result(1000)).to.equal(3)
        // Refused, reported stale: the task still reads as processing until its lease lapses.
        expect(stale).to.have.members(bad.map(d => d.id))
        for (const d of bad) {
          expect(await d.status()).to.equal('processing')
          expect((await d.info())?.status).to.equal('processing')
        }
        // The sweep puts each back for its second attempt: none is lost.
        await until(
          async () =>
            (await b.sweep(queue, 10)) >= 0 &&
            (await Promise.all(bad.map(d => d.status()))).every(s => s === 'enqueued'),
          5000,
          'the tasks back in line',
        )
        const again = (await b.exchange(queue, 'w', [], bad.length)).reserved
        expect(again.map(t => [t.id, t.attempt])).to.have.deep.members(bad.map(d => [d.id, 2]))
      } finally {
        await broker.close()
      }
    })
  })
}
