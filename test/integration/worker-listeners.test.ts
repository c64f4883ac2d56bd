/**
 * Listeners of a pool's events (and of its child processes' events) that throw, or whose promise
 * rejects: each is reported as `pool:error` (a ListenerError), and neither the pool, the task, the
 * backend's control channel nor the caller of `cancel()` or `pause()` is touched by the throw. On
 * memory:// and on a private Redis (which a test fills up for a transient backend error).
 */
import { expect } from 'chai'
import type { Redis } from 'ioredis'
import { fileURLToPath } from 'node:url'
import { BackendFull, getBroker, WorkerPool, type TaskContext } from '../../lib/index.js'
import { ChildProcessExecutor } from '../../lib/worker/children/index.js'
import { ListenerError } from '../../lib/worker/events.js'
import type { w } from '../fixtures/worker-tasks.js'
import { helperRedis, startRedis, type RedisServer } from '../helpers/redis-server.js'
import { latch, uniqueQueue, until } from '../helpers/util.js'

const TASKS = fileURLToPath(new URL('../fixtures/worker-tasks.ts', import.meta.url))

/** The ListenerErrors among `errors`, counted by the event whose listener threw. */
function byEvent(errors: Error[]): Record<string, number> {
  const counts: Record<string, number> = {}
  for (const e of errors) {
    expect(e).to.be.instanceOf(ListenerError)
    expect(e).to.have.property('code', 'ERR_WORQ_LISTENER')
    const { event } = e as ListenerError
    counts[event] = (counts[event] ?? 0) + 1
  }
  return counts
}

describe('worker: listeners that throw', function () {
  let server: RedisServer
  let admin: Redis
  before(async () => {
    server = await startRedis({ args: ['--maxmemory-policy', 'noeviction'] })
    admin = helperRedis(server.url)
  })
  after(async () => {
    await admin?.quit()
    await server?.stop()
  })

  for (const where of ['memory', 'redis']) {
    const url = () => (where === 'memory' ? 'memory://' : server.url)

    it(`task:start, task:progress and task:end listeners that throw or reject are reported; tasks and pool go on [${where}]`, async () => {
      const broker = getBroker(url(), uniqueQueue('listen'))
      broker.expose(function step(this: TaskContext, n: number) {
        this.progress(n)
        return n * 2
      })
      const pool = new WorkerPool(broker, { concurrency: 2 })
      const errors: Error[] = []
      const ends: string[] = []
      pool.on('pool:error', e => errors.push(e))
      pool.on('task:start', () => {
        throw new Error('a task:start listener')
      })
      pool.on('task:progress', () => {
        throw new TypeError('a task:progress listener')
      })
      pool.on('task:end', async () => {
        throw new RangeError('a task:end listener')
      })
      pool.on('task:end', e => ends.push(e.status)) // called although the one before failed
      try {
        await pool.start()
        const q = broker.queue()
        const ds = await Promise.all([1, 2, 3].map(n => q.step(n)))
        expect(await Promise.all(ds.map(d => d.result(5000)))).to.deep.equal([2, 4, 6])
        await until(() => errors.length >= 9, 5000, 'nine listener errors')
        expect(byEvent(errors)).to.deep.equal({
          'task:start': 3,
          'task:progress': 3,
          'task:end': 3,
        })
        const end = errors.find(e => (e as ListenerError).event === 'task:end')!
        expect(end.cause).to.be.instanceOf(RangeError)
        expect(end.message).to.match(/listener of "task:end" threw RangeError: a task:end listener/)
        expect(ends).to.deep.equal(['completed', 'completed', 'completed'])
      } finally {
        await pool.stop()
        await broker.close()
      }
    })

    it(`task:cancelled and pool:paused listeners that throw reach neither the caller nor the control channel [${where}]`, async () => {
      const broker = getBroker(url(), uniqueQueue('listen'))
      const started = latch()
      broker.expose(function wait(this: TaskContext) {
        started.resolve()
        return new Promise(resolve => this.signal.addEventListener('abort', resolve))
      })
      broker.expose(function double(n: number) {
        return n * 2
      })
      const pool = new WorkerPool(broker)
      const errors: Error[] = []
      const resumed = latch()
      pool.on('pool:error', e => errors.push(e))
      pool.on('task:cancelled', () => {
        throw new Error('a task:cancelled listener')
      })
      pool.on('pool:paused', () => {
        throw new Error('a pool:paused listener')
      })
      pool.on('pool:resumed', () => resumed.resolve())
      try {
        await pool.start()
        const q = broker.queue()
        const d = await q.wait()
        await started.promise
        expect(await d.cancel()).to.equal(true)
        await until(() => errors.length === 1, 5000, 'the task:cancelled listener error')
        await broker.pause()
        await until(() => errors.length === 2, 5000, 'the pool:paused listener error')
        expect(byEvent(errors)).to.deep.equal({ 'task:cancelled': 1, 'pool:paused': 1 })
        // The control channel still delivers: the resume is heard, and tasks run again.
        await broker.resume()
        await resumed.promise
        expect(await (await q.double(21)).result(5000)).to.equal(42)
      } finally {
        await pool.stop()
        await broker.close()
      }
    })
  }

  it('a pool:error listener that throws on a transient backend error leaves the pool running; its throw is reported once [redis]', async () => {
    const broker = getBroker(server.url, uniqueQueue('listen'))
    broker.expose(function double(n: number) {
      return n * 2
    })
    const pool = new WorkerPool(broker, { blockTimeout: 50, sweepInterval: 50 })
    const seen: Error[] = []
    pool.on('pool:error', e => seen.push(e))
    pool.on('pool:error', () => {
      throw new Error('a pool:error listener')
    })
    try {
      await pool.start()
      // Full: every call that writes is refused with BackendFull until memory is given back.
      await admin.config('SET', 'maxmemory', '1')
      await until(() => seen.some(e => e instanceof BackendFull), 5000, 'a BackendFull')
      await admin.config('SET', 'maxmemory', '0')
      expect(await (await broker.queue().double(21)).result(5000)).to.equal(42)
      const reports = seen.filter(e => e instanceof ListenerError)
      expect(reports.length).to.be.above(0)
      // One report per error the throwing listener got; none about a report.
      expect(reports.length).to.equal(seen.length - reports.length)
      expect(byEvent(reports)).to.deep.equal({ 'pool:error': reports.length })
    } finally {
      await admin.config('SET', 'maxmemory', '0')
      await pool.stop()
      await broker.close()
    }
  })

  it('a child:exit listener that throws: the child is replaced all the same, and the throw is reported [memory, child processes]', async () => {
    const broker = getBroker('memory://', uniqueQueue('listen'))
    const executor = new ChildProcessExecutor({ tasks: TASKS })
    executor.on('child:exit', () => {
      throw new Error('a child:exit listener')
    })
    const pool = new WorkerPool(broker, { concurrency: 1, executor })
    const errors: Error[] = []
    pool.on('pool:error', e => errors.push(e))
    try {
      await pool.start()
      const q = broker.queue<typeof w>()
      const pid = (await (await q.w.pid()).result(5000)) as number
      process.kill(pid, 'SIGKILL')
      await until(() => errors.length === 1, 5000, 'the child:exit listener error')
      expect(byEvent(errors)).to.deep.equal({ 'child:exit': 1 })
      expect(await (await q.w.add(1, 2)).result(5000)).to.equal(3)
    } finally {
      await pool.stop({ timeout: 1000 })
      await broker.close()
    }
  })
})
