import { expect } from 'chai'
import { getBroker, task, WorkerPool } from '../../lib/index.js'
import { backends } from '../helpers/backends.js'
import { latch, uniqueQueue } from '../helpers/util.js'

for (const backend of backends) {
  describe(`contract: inspect and live workers [${backend.name}]`, () => {
    let url: string
    before(async () => {
      url = await backend.url()
    })

    it('counts waiting, delayed, pending and processing tasks, and the oldest wait', async () => {
      const queue = uniqueQueue()
      const broker = getBroker(url, queue)
      try {
        const { backend: b } = await broker.backend()
        const empty = await b.inspect(queue)
        expect(empty).to.deep.include({
          waiting: 0,
          delayed: 0,
          pending: 0,
          processing: 0,
          oldestWaitingMs: null,
        })
        const q = broker.queue()
        const first = await q.f(1)
        await q.f(first)
        await task(q.f, { delay: 60_000 })(2)
        await q.f(3)
        await b.exchange(queue, 'w', [], 1)
        const info = await b.inspect(queue)
        expect(info).to.deep.include({ waiting: 1, delayed: 1, pending: 1, processing: 1 })
        expect(info.oldestWaitingMs).to.be.a('number').that.is.at.least(0)
      } finally {
        await broker.purge()
        await broker.close()
      }
    })

    it('a started pool is listed as a live worker, and is gone after stop', async () => {
      const queue = uniqueQueue()
      const broker = getBroker(url, queue)
      const started = latch()
      const release = latch()
      broker.expose(async function busy() {
        started.resolve()
        await release.promise
      })
      const pool = new WorkerPool(broker, { concurrency: 3, id: 'w-1' })
      try {
        const { backend: b } = await broker.backend()
        await pool.start()
        let info = await b.inspect(queue)
        expect(info.workers.map(w => [w.id, w.pid, w.concurrency])).to.deep.equal([
          ['w-1', process.pid, 3],
        ])
        await broker.queue().busy()
        await started.promise
        expect((await b.inspect(queue)).processing).to.equal(1)
        release.resolve()
        await pool.stop()
        info = await b.inspect(queue)
        expect(info.workers).to.deep.equal([])
      } finally {
        await broker.close()
      }
    })
  })
}
