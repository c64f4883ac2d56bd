/**
 * A Redis out of memory (`maxmemory` reached under `noeviction`; here a `maxmemory` below what the
 * server holds): new work and new results are refused with BackendFull, reads keep working, running tasks keep their leases, an operator can
 * purge, and once memory is free the held finish lands. Each refused call ran nothing.
 */
import { expect } from 'chai'
import { Redis } from 'ioredis'
import type { Finish } from '../../lib/backends/backend.js'
import { RedisBackend } from '../../lib/backends/redis/redis.js'
import { BackendFull, getBroker, task, TaskSpace, WorkerPool } from '../../lib/index.js'
import { newTask } from '../helpers/new-task.js'
import { hasBinary, INSTALL, startRedis, type RedisServer } from '../helpers/redis-server.js'
import { uniqueQueue } from '../helpers/util.js'

/**
 * Makes the server full: `maxmemory` of one byte, below anything it holds, so every call that may
 * write is refused for as long as the test wants (filling it with keys instead leaves it a few
 * bytes from the limit, where a freed buffer lets the next write through).
 */
async function fill(admin: Redis): Promise<void> {
  await admin.config('SET', 'maxmemory', '1')
  await admin.set('probe', 'x').then(
    () => expect.fail('the server took a write while full'),
    (err: unknown) => expect(String(err)).to.match(/OOM/),
  )
}

/** Gives the server room again. */
async function unfill(admin: Redis): Promise<void> {
  await admin.config('SET', 'maxmemory', '0')
}

/** Expects `call` to reject with BackendFull for `operation`. */
async function refused(call: Promise<unknown>, operation: string): Promise<void> {
  const err = await call.then(
    () => expect.fail(`${operation} was not refused`),
    (e: unknown) => e,
  )
  expect(err).to.be.instanceOf(BackendFull)
  expect(err).to.include({ code: 'ERR_WORQ_BACKEND_FULL', operation })
  expect((err as Error).message).to.match(/out of memory.*raise maxmemory/)
}

describe('redis: a server out of memory', () => {
  let server: RedisServer
  let admin: Redis
  before(async function () {
    if (!hasBinary()) throw new Error(INSTALL)
    server = await startRedis({ args: ['--maxmemory-policy', 'noeviction'] })
    admin = new Redis(server.url)
  })
  after(async () => {
    admin?.disconnect()
    await server?.stop()
  })

  it('refuses enqueues and finishes, answers reads, renews leases, purges; the held finish lands once memory is free', async () => {
    const queue = uniqueQueue('oom')
    const backend = new RedisBackend(server.url, { maxPayloadBytes: 1 << 20 })
    try {
      await backend.enqueue(queue, [newTask('run'), newTask('w1'), newTask('w2'), newTask('w3')])
      const [mine] = (await backend.exchange(queue, 'w', [], 1)).reserved
      expect(mine!.id).to.equal('run')
      await fill(admin)

      await refused(backend.enqueue(queue, [newTask('late')]), 'enqueue')
      const finish: Finish = { ...mine!, outcome: 'c"done"' }
      await refused(backend.exchange(queue, 'w', [finish], 0), 'exchange')

      // Reads: the running task, the queue's size, one waiting task's info, the listing.
      expect(await backend.status(queue, 'run')).to.deep.equal({ status: 'processing' })
      expect(await backend.status(queue, 'late')).to.equal(null)
      expect(await backend.size(queue)).to.equal(3) // the waiting ones
      expect((await backend.info(queue, 'w1'))!.status).to.equal('enqueued')
      const listed = await backend.list(queue, { statuses: ['enqueued'], limit: 10, offset: 0 })
      expect(listed.map(t => t.id).sort()).to.deep.equal(['w1', 'w2', 'w3'])
      // The running task keeps its lease; dead workers' entries can go; waiting work can be purged.
      expect(await backend.renew(queue, [{ ...mine!, heartrate: 10_000 }])).to.deep.equal([])
      expect((await backend.inspect(queue)).waiting).to.equal(3)
      expect(await backend.purge(queue)).to.equal(3)
      expect(await backend.status(queue, 'w1')).to.include({ status: 'cancelled' })

      await unfill(admin)
      const after = await backend.exchange(queue, 'w', [finish], 0)
      expect(after.stale).to.deep.equal([])
      expect(await backend.status(queue, 'run')).to.deep.equal({
        status: 'completed',
        outcome: 'c"done"',
      })
      expect(await backend.status(queue, 'late')).to.equal(null)
    } finally {
      await unfill(admin)
      await backend.close()
    }
  })

  it('a broker call is refused with BackendFull, its reads answer, and a pool cannot start until memory is free', async () => {
    const queue = uniqueQueue('oom')
    const broker = getBroker(server.url, queue)
    const pool = new WorkerPool(broker, { concurrency: 2 })
    try {
      const d = await broker.queue().add(1, 2)
      await fill(admin)
      await refused(broker.queue().add(3, 4), 'enqueue')
      expect(await d.status()).to.equal('enqueued')
      expect(await broker.size()).to.equal(1)
      expect((await broker.task(d.id))!.status).to.equal('enqueued')
      expect((await broker.tasks()).map(t => t.id)).to.deep.equal([d.id])
      await refused(pool.start(), 'register-worker')
      await pool.stop() // a failed start left it stopped
      await unfill(admin)
      broker.expose(new TaskSpace('', { add: (a: number, b: number) => a + b }))
      const next = new WorkerPool(broker, { concurrency: 2 })
      await next.start()
      try {
        expect(await d.result(10_000)).to.equal(3)
      } finally {
        await next.stop()
      }
    } finally {
      await unfill(admin)
      await broker.close()
    }
  })

  it('a running task outlives its lease time on a full server, its finish waits for memory, and it ran once', async () => {
    const queue = uniqueQueue('oom')
    const broker = getBroker(server.url, queue)
    let release!: () => void
    const gate = new Promise<void>(r => (release = r))
    let started!: () => void
    const running = new Promise<void>(r => (started = r))
    let runs = 0
    broker.expose(
      new TaskSpace('', {
        async held() {
          runs++
          started()
          await gate
          return 'held'
        },
      }),
    )
    const pool = new WorkerPool(broker, { concurrency: 1 })
    const errors: unknown[] = []
    pool.on('pool:error', err => errors.push(err))
    try {
      await pool.start()
      // heartrate 100 ms: a lease of 2 × 100 + 1 000 ms, renewed every 100 ms.
      const d = await task(broker.queue().held, { heartrate: 100, attempts: 1 })()
      await running
      await fill(admin)
      await new Promise(r => setTimeout(r, 1500)) // past the lease: time is under test
      release()
      await new Promise(r => pool.once('pool:error', r)) // its finish is refused
      expect(errors[0]).to.be.instanceOf(BackendFull)
      expect(await d.status()).to.equal('processing')
      await unfill(admin)
      expect(await d.result(10_000)).to.equal('held')
      expect(runs).to.equal(1)
    } finally {
      release()
      await unfill(admin)
      await pool.stop()
      await broker.close()
    }
  })
})
