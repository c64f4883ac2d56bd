import { expect } from 'chai'
import { getBroker, task, WorkerPool } from '../../lib/index.js'
import { backends } from '../helpers/backends.js'
import { latch, uniqueQueue, until } from '../helpers/util.js'

for (const backend of backends) {
  describe(`contract: pause and resume [${backend.name}]`, () => {
    let url: string
    before(async () => {
      url = await backend.url()
    })

    it('nothing starts while paused, running tasks finish, and resume runs what waited in priority order', async () => {
      const queue = uniqueQueue('pause')
      const broker = getBroker(url, queue)
      const order: string[] = []
      const release = latch()
      const running = latch()
      broker.expose(async function run(label: string) {
        order.push(label)
        if (label === 'running') {
          running.resolve()
          await release.promise
        }
        return label
      })
      try {
        const pool = new WorkerPool(broker, { concurrency: 1, prefetch: 0 })
        const paused = latch()
        const resumed = latch()
        const flags: boolean[] = []
        pool.on('pool:paused', e => {
          flags.push(e.paused)
          paused.resolve()
        })
        pool.on('pool:resumed', e => {
          flags.push(e.paused)
          resumed.resolve()
        })
        await pool.start()
        expect(pool.paused).to.equal(false)
        const q = broker.queue()
        const first = await q.run('running')
        await running.promise
        await broker.pause()
        expect(await broker.isPaused()).to.equal(true)
        expect((await broker.inspect()).paused).to.equal(true)
        await paused.promise
        expect(pool.paused).to.equal(true)
        const waiting = [
          await task(q.run, { priority: 2 })('p2'),
          await q.run('p0'),
          await task(q.run, { priority: -1 })('p-1'),
        ]
        release.resolve()
        expect(await first.result(5000)).to.equal('running')
        await new Promise(r => setTimeout(r, 300)) // nothing starts meanwhile: time is under test
        expect(order).to.deep.equal(['running'])
        expect(await broker.size()).to.equal(3)
        await broker.pause() // a second pause changes nothing
        await broker.resume()
        await resumed.promise
        expect(pool.paused).to.equal(false)
        expect(flags).to.deep.equal([true, false])
        expect(await broker.isPaused()).to.equal(false)
        await Promise.all(waiting.map(d => d!.result(5000)))
        expect(order).to.deep.equal(['running', 'p-1', 'p0', 'p2'])
        await pool.stop()
      } finally {
        await broker.close()
      }
    })

    it('tasks a pool holds ahead go back in line at a pause, and start after the resume', async () => {
      const queue = uniqueQueue('pause')
      const broker = getBroker(url, queue)
      const ran: string[] = []
      const release = latch()
      const blocking = latch()
      broker.expose(async function run(label: string) {
        ran.push(label)
        if (label === 'block') {
          blocking.resolve()
          await release.promise
        }
        return label
      })
      try {
        const pool = new WorkerPool(broker, { concurrency: 1, prefetch: 8 })
        const paused = latch()
        pool.on('pool:paused', () => paused.resolve())
        await pool.start()
        const q = broker.queue()
        // Short tasks first, so that the pool holds tasks ahead (it does only while tasks are short).
        for (const d of await Promise.all(Array.from({ length: 20 }, (_, i) => q.run(`warm${i}`))))
          await d.result(5000)
        ran.length = 0
        const block = await q.run('block')
        await blocking.promise
        const after = await Promise.all(Array.from({ length: 8 }, (_, i) => q.run(`after${i}`)))
        await until(async () => (await broker.inspect()).processing > 1, 5000, 'tasks held ahead')
        await broker.pause()
        await paused.promise
        await until(async () => (await broker.size()) === 8, 5000, 'the held tasks back in line')
        release.resolve()
        expect(await block.result(5000)).to.equal('block')
        await new Promise(r => setTimeout(r, 300)) // nothing starts meanwhile: time is under test
        expect(ran).to.deep.equal(['block'])
        await broker.resume()
        await Promise.all(after.map(d => d.result(5000)))
        expect(ran).to.deep.equal(['block', ...after.map((_, i) => `after${i}`)])
        await pool.stop()
      } finally {
        await broker.close()
      }
    })

    it('a paused queue keeps taking enqueues, and a pool started while paused waits', async () => {
      const queue = uniqueQueue('pause')
      const broker = getBroker(url, queue)
      const ran: number[] = []
      broker.expose(function f(n: number) {
        ran.push(n)
        return n
      })
      try {
        await broker.pause()
        const ds = await Promise.all([1, 2, 3].map(n => broker.queue().f(n)))
        const pool = new WorkerPool(broker)
        const paused = latch()
        pool.on('pool:paused', () => paused.resolve())
        await pool.start()
        await paused.promise // a pool that starts on a paused queue says so
        await new Promise(r => setTimeout(r, 300)) // nothing starts meanwhile: time is under test
        expect(ran).to.deep.equal([])
        await broker.resume()
        await Promise.all(ds.map(d => d.result(5000)))
        await until(() => ran.length === 3, 5000, 'all three')
        await pool.stop()
      } finally {
        await broker.close()
      }
    })
  })
}
