import { expect } from 'chai'
import {
  getBroker,
  ListingOff,
  NotRetryable,
  task,
  TaskSpace,
  WorkerPool,
  type TaskContext,
  type TaskInfo,
} from '../../lib/index.js'
import { backends } from '../helpers/backends.js'
import { latch, uniqueQueue, until } from '../helpers/util.js'

for (const backend of backends) {
  describe(`contract: task info and listing [${backend.name}]`, () => {
    let url: string
    before(async () => {
      url = await backend.url()
    })

    it('TaskInfo reports a task through its life: enqueued, processing, completed and failed', async () => {
      const queue = uniqueQueue('info')
      const broker = getBroker(url, queue)
      const started = latch()
      const release = latch()
      broker.expose(async function work(x: number) {
        started.resolve()
        await release.promise
        if (x < 0) throw new RangeError('negative')
        return x * 2
      })
      try {
        const q = broker.queue()
        const before = Date.now()
        const d = await task(q.work, { priority: 3, attempts: 2, metadata: { k: 'v' } })(21)
        let info = (await d.info())!
        expect(info).to.include({ id: d.id, name: 'work', queue, status: 'enqueued', priority: 3 })
        expect(info).to.include({ attempt: 0, attempts: 2, cached: false })
        expect(info.metadata).to.deep.equal({ k: 'v' })
        expect(info.createdAt.getTime()).to.be.within(before - 1000, Date.now() + 1000)
        expect(info.startedAt).to.equal(undefined)
        const pool = new WorkerPool(broker, { concurrency: 1 })
        await pool.start()
        await started.promise
        info = (await broker.task(d.id))!
        expect(info.status).to.equal('processing')
        expect(info.attempt).to.equal(1)
        expect(info.workerId).to.equal(pool.id)
        expect(info.startedAt).to.be.instanceOf(Date)
        release.resolve()
        expect(await d.result(5000)).to.equal(42)
        info = (await d.info())!
        expect(info).to.include({ status: 'completed', value: 42, attempt: 1, workerId: pool.id })
        expect(info.finishedAt!.getTime()).to.be.at.least(info.startedAt!.getTime())
        expect(info.error).to.equal(undefined)
        const f = await q.work(-1)
        await f.wait(5000)
        const failed = (await broker.task(f.id))!
        expect(failed.status).to.equal('failed')
        expect(failed.error).to.include({ name: 'RangeError', message: 'negative' })
        expect(failed.error!.stack).to.be.a('string')
        await pool.stop()
        expect(await broker.task('no-such-task')).to.equal(undefined)
      } finally {
        await broker.close()
      }
    })

    it('lists tasks newest first, with filters that combine and paging that neither repeats nor skips', async () => {
      const queue = uniqueQueue('list')
      const broker = getBroker(url, queue)
      broker.expose(
        new TaskSpace('a', { ok: (n: number) => n, bad: () => Promise.reject(new Error('no')) }),
      )
      broker.expose(new TaskSpace('b', { ok: (n: number) => n }))
      try {
        const q = broker.queue()
        const done: string[] = []
        for (let i = 0; i < 6; i++) done.push((await q.a.ok(i)).id)
        for (let i = 0; i < 3; i++) done.push((await q.a.bad()).id)
        for (let i = 0; i < 4; i++) done.push((await q.b.ok(i)).id)
        const pool = new WorkerPool(broker, { concurrency: 4 })
        await pool.start()
        await until(
          async () => (await broker.inspect()).processing + (await broker.size()) === 0,
          5000,
          'drain',
        )
        await pool.stop()
        await new Promise(r => setTimeout(r, 15))
        const mark = new Date()
        await new Promise(r => setTimeout(r, 15))
        const waiting: string[] = []
        for (let i = 0; i < 5; i++) waiting.push((await q.b.ok(100 + i)).id)

        const all = await broker.tasks({ limit: 1000 })
        expect(all.map(t => t.id)).to.deep.equal([...done, ...waiting].reverse())
        const ids = (ts: TaskInfo[]) => ts.map(t => t.id)
        expect(ids(await broker.tasks({ status: 'failed' }))).to.deep.equal(
          done.slice(6, 9).reverse(),
        )
        expect(ids(await broker.tasks({ status: ['failed', 'enqueued'] }))).to.deep.equal(
          [...done.slice(6, 9), ...waiting].reverse(),
        )
        expect(ids(await broker.tasks({ name: 'a.ok' }))).to.deep.equal(done.slice(0, 6).reverse())
        expect(ids(await broker.tasks({ name: 'a.' }))).to.deep.equal(done.slice(0, 9).reverse())
        expect(ids(await broker.tasks({ name: 'b.', status: 'completed' }))).to.deep.equal(
          done.slice(9).reverse(),
        )
        expect(ids(await broker.tasks({ olderThan: mark }))).to.deep.equal(done.slice().reverse())
        expect(ids(await broker.tasks({ newerThan: mark }))).to.deep.equal(
          waiting.slice().reverse(),
        )
        expect(
          ids(await broker.tasks({ newerThan: 60_000, name: 'b.ok', status: 'enqueued' })),
        ).to.deep.equal(waiting.slice().reverse())
        expect(await broker.tasks({ olderThan: 60_000 })).to.deep.equal([])
        // Paging: pages of 4 cover everything once, in order.
        const paged: string[] = []
        for (let offset = 0; ; offset += 4) {
          const page = await broker.tasks({ limit: 4, offset })
          paged.push(...ids(page))
          if (page.length < 4) break
        }
        expect(paged).to.deep.equal(ids(all))
        // An offset within a time window counts from the window's newest task.
        expect(ids(await broker.tasks({ olderThan: mark, offset: 3, limit: 4 }))).to.deep.equal(
          done.slice().reverse().slice(3, 7),
        )
        expect(await broker.tasks({ offset: all.length })).to.deep.equal([])
        expect(ids(await broker.tasks({ offset: all.length - 1 }))).to.deep.equal([all.at(-1)?.id])
        expect((await broker.tasks()).length).to.equal(all.length)
      } finally {
        await broker.purge()
        await broker.close()
      }
    })

    it('bad filters are TypeErrors naming the field', async () => {
      const broker = getBroker(url, uniqueQueue('list'))
      try {
        const bad: Array<[object, RegExp]> = [
          [{ status: 'done' }, /`status`/],
          [{ limit: 0 }, /`limit`/],
          [{ limit: 1001 }, /`limit`/],
          [{ offset: -1 }, /`offset`/],
          [{ name: 'a..b' }, /`name`/],
          [{ olderThan: 'yesterday' }, /`olderThan`/],
          [{ newerThan: new Date('nope') }, /`newerThan`/],
          [{ colour: 'red' }, /colour/],
        ]
        for (const [filter, message] of bad) {
          const err = await broker.tasks(filter as never).catch((e: unknown) => e)
          expect(err, JSON.stringify(filter)).to.be.instanceOf(TypeError)
          expect((err as Error).message).to.match(message)
        }
      } finally {
        await broker.close()
      }
    })

    it('an ignoreResult task leaves the list when it ends', async () => {
      const broker = getBroker(url, uniqueQueue('list'))
      const ran = latch()
      broker.expose(function fire() {
        ran.resolve()
      })
      try {
        await task(broker.queue().fire, { ignoreResult: true })()
        expect((await broker.tasks()).map(t => t.status)).to.deep.equal(['enqueued'])
        const pool = new WorkerPool(broker)
        await pool.start()
        await ran.promise
        await until(async () => (await broker.tasks()).length === 0, 5000, 'the task to leave')
        await pool.stop()
      } finally {
        await broker.close()
      }
    })

    it('with listing off, tasks() says how to turn it on', async () => {
      const broker = getBroker(url, uniqueQueue('list'))
      try {
        await broker.configure({ listing: false })
        const err = await broker.tasks().catch((e: unknown) => e)
        expect(err).to.be.instanceOf(ListingOff)
        expect((err as ListingOff).code).to.equal('ERR_WORQ_LISTING_OFF')
        expect((err as Error).message).to.match(/configure\(\{ listing: true \}\)/)
        expect((await broker.settings()).listing).to.equal(false)
        await broker.configure({ listing: true })
        const d = await broker.queue().f()
        expect((await broker.tasks()).map(t => t.id)).to.deep.equal([d.id])
      } finally {
        await broker.purge()
        await broker.close()
      }
    })

    it('retry() enqueues a failed, expired or cancelled task again with its arguments and options', async () => {
      const queue = uniqueQueue('retry')
      const broker = getBroker(url, queue)
      let fail = true
      broker.expose(function flaky(this: TaskContext, n: number) {
        if (fail) throw new Error('not yet')
        return { n, metadata: this.metadata, attempts: this.attempts }
      })
      try {
        const pool = new WorkerPool(broker)
        await pool.start()
        const q = broker.queue()
        const d = await task(q.flaky, { priority: 4, metadata: { who: 'ops' }, attempts: 1 })(7)
        await d!.wait(5000)
        expect(await d!.status()).to.equal('failed')
        fail = false
        const again = await broker.retry(d!.id)
        expect(again).to.be.a('string').and.not.equal(d!.id)
        const info = await until(
          async () => (await broker.task(again!))?.status === 'completed',
          5000,
          'the retry',
        ).then(() => broker.task(again!))
        expect(info).to.include({ name: 'flaky', priority: 4, status: 'completed' })
        expect(info!.value).to.deep.equal({ n: 7, metadata: { who: 'ops' }, attempts: 1 })
        const err = await broker.retry(again!).catch((e: unknown) => e)
        expect(err).to.be.instanceOf(NotRetryable)
        expect((err as NotRetryable).code).to.equal('ERR_WORQ_NOT_RETRYABLE')
        expect(await broker.retry('no-such-task')).to.equal(undefined)
        await pool.stop()
      } finally {
        await broker.close()
      }
    })

    it('TaskInfo.args: plain and superjson values, Deferred arguments as references, kept after a failure', async () => {
      const queue = uniqueQueue('args')
      const broker = getBroker(url, queue)
      const hold = latch()
      broker.expose(
        new TaskSpace('a', {
          held: async (_n: number) => {
            await hold.promise
            return 5
          },
          use: (_x: unknown, _when: Date, _m: Map<string, bigint>) => {
            throw new Error('no')
          },
        }),
      )
      try {
        const q = broker.queue()
        const first = await q.a.held(1)
        const when = new Date('2026-01-02T03:04:05.000Z')
        const m = new Map([['k', 12n]])
        const d = await q.a.use({ ref: first, list: [1, 'two'] }, when, m)
        const waiting = (await broker.task(d.id))!
        expect(waiting.status).to.equal('pending')
        expect(waiting.args).to.deep.equal([
          { ref: { $deferred: { queue, id: first.id } }, list: [1, 'two'] },
          when,
          m,
        ])
        expect((await broker.task(first.id))!.args).to.deep.equal([1])
        const pool = new WorkerPool(broker)
        await pool.start()
        hold.resolve()
        await d.wait(5000)
        await pool.stop()
        const failed = (await broker.task(d.id))!
        expect(failed.status).to.equal('failed')
        // Its Deferred argument completed before it ran: the reference stays a reference.
        expect(failed.args).to.deep.equal([
          { ref: { $deferred: { queue, id: first.id } }, list: [1, 'two'] },
          when,
          m,
        ])
        const listed = await broker.tasks({ status: 'failed' })
        expect(listed.map(t => t.args)).to.deep.equal([failed.args])
        // A completed task keeps no call: its arguments are gone with it.
        const completed = (await broker.task(first.id))!
        expect(completed.status).to.equal('completed')
        expect(completed.args).to.equal(undefined)
      } finally {
        await broker.close()
      }
    })

    it('types() lists the names live workers expose, with how many expose each', async () => {
      const queue = uniqueQueue('types')
      const one = getBroker(url, queue).expose(new TaskSpace('m', { add: () => 1, sub: () => 2 }))
      const two = getBroker(url, queue).expose(new TaskSpace('m', { add: () => 1 }))
      const p1 = new WorkerPool(one)
      const p2 = new WorkerPool(two)
      try {
        expect(await one.types()).to.deep.equal([])
        await p1.start()
        await p2.start()
        expect(await one.types()).to.deep.equal([
          { name: 'm.add', workers: 2 },
          { name: 'm.sub', workers: 1 },
        ])
        await p2.stop()
        expect(await one.types()).to.deep.equal([
          { name: 'm.add', workers: 1 },
          { name: 'm.sub', workers: 1 },
        ])
      } finally {
        await p1.stop()
        await p2.stop()
        await one.close()
        await two.close()
      }
    })
  })
}
