import { expect } from 'chai'
import { Redis } from 'ioredis'
import { RedisBackend } from '../../lib/backends/redis/redis.js'
import type { Deferred } from '../../lib/index.js'
import { newTask } from '../helpers/new-task.js'
import { usePrivateRedis } from '../helpers/redis-server.js'
import { uniqueQueue, withWorker } from '../helpers/util.js'

/** Names of the worq function libraries loaded on the server. */
async function libraries(admin: Redis): Promise<string[]> {
  const list = (await admin.function('LIST', 'LIBRARYNAME', 'worq_*')) as unknown[][]
  return list.map(lib => String(lib[lib.indexOf('library_name') + 1]))
}

/** Calls of each command since the last CONFIG RESETSTAT. */
async function calls(admin: Redis): Promise<Map<string, number>> {
  const stats = (await admin.info('commandstats')) as string
  return new Map([...stats.matchAll(/cmdstat_([^:]+):calls=(\d+)/g)].map(m => [m[1]!, +m[2]!]))
}

describe('redis: the function library', () => {
  // A server of its own: these tests flush its functions and read its command counts.
  const own = usePrivateRedis()
  beforeEach(async () => {
    await own.admin.function('FLUSH')
    await own.admin.config('RESETSTAT')
  })

  /** Runs every operation once through a backend; returns what each answered. */
  async function everyOperation(functions: boolean): Promise<Record<string, unknown>> {
    const queue = uniqueQueue('fn')
    const b = new RedisBackend(own.server.url, {
      maxPayloadBytes: 1 << 20,
      functions,
    })
    try {
      const info = {
        ...{ id: 'w', hostname: 'h', pid: 1, concurrency: 1 },
        ...{ running: 0, startedAt: Date.now(), seenAt: 0, names: ['func'], tasks: [] },
      }
      await b.registerWorker(queue, info, 10_000)
      const enqueued = await b.enqueue(queue, [
        newTask('a'),
        newTask('b'),
        newTask('later', { runAt: Date.now() + 60_000 }),
      ])
      const size = await b.size(queue)
      const { reserved } = await b.exchange(queue, 'w', [], 1)
      const lost = await b.renew(queue, reserved)
      const done = await b.exchange(queue, 'w', [{ ...reserved[0]!, outcome: 'c1' }], 0)
      const status = await b.status(queue, reserved[0]!.id)
      const cancelled = await b.cancel(queue, 'later')
      const inspected = await b.inspect(queue)
      const swept = await b.sweep(queue, 1000)
      const purged = await b.purge(queue)
      await b.unregisterWorker(queue, 'w')
      return {
        enqueued,
        size,
        reserved: reserved.map(t => t.id),
        lost,
        stale: done.stale,
        status,
        cancelled,
        waiting: inspected.waiting,
        workers: inspected.workers.map(w => w.id),
        swept,
        purged,
        left: await b.size(queue),
      }
    } finally {
      await b.close()
    }
  }

  const expected = {
    enqueued: ['ok', 'ok', 'ok'],
    size: 3,
    reserved: ['a'],
    lost: [],
    stale: [],
    status: { status: 'completed', outcome: 'c1' },
    cancelled: true,
    waiting: 1,
    workers: ['w'],
    swept: 0,
    purged: 1,
    left: 0,
  }

  it('loads one library on first use and runs every operation through FCALL', async () => {
    expect(await everyOperation(true)).to.deep.equal(expected)
    expect(await libraries(own.admin)).to.have.length(1)
    const n = await calls(own.admin)
    expect(n.get('function|load'), 'one load').to.equal(1)
    expect(n.get('fcall'), 'FCALL').to.be.greaterThan(10)
    expect(n.has('evalsha') || n.has('eval'), 'no scripts').to.equal(false)
  })

  it('with redisFunctions: false loads nothing and runs every operation as a script', async () => {
    expect(await everyOperation(false)).to.deep.equal(expected)
    expect(await libraries(own.admin)).to.deep.equal([])
    const n = await calls(own.admin)
    expect(n.has('fcall') || n.has('function|load'), 'no functions').to.equal(false)
    expect((n.get('evalsha') ?? 0) + (n.get('eval') ?? 0)).to.be.greaterThan(10)
  })

  /** A worker pool running `add` on `url`, and its broker's queue. */
  async function adder(url: string) {
    const w = await withWorker(url, broker =>
      broker.expose(function add(a: number, b: number) {
        return a + b
      }),
    )
    const q = w.broker.queue()
    const add = async (a: number, b: number) =>
      ((await q.add(a, b)) as Deferred<number>).result(5000)
    return { add, close: w.close }
  }

  it('loads the library again when the server lost it (FUNCTION FLUSH), and no call fails', async () => {
    const w = await adder(own.server.url)
    try {
      expect(await w.add(1, 2)).to.equal(3)
      await own.admin.function('FLUSH')
      expect(await libraries(own.admin)).to.deep.equal([])
      // The worker's parked wait and the next enqueue both meet a server without the library.
      expect(await w.add(2, 3)).to.equal(5)
      expect(await libraries(own.admin)).to.have.length(1)
    } finally {
      await w.close()
    }
  })

  it('a user who may not load functions gets scripts, and work goes on', async () => {
    await own.admin.acl('SETUSER', 'nofn', 'on', '>pw', '~*', '&*', '+@all', '-function')
    const w = await adder(own.server.url.replace('redis://', 'redis://nofn:pw@'))
    try {
      expect(await w.add(4, 5)).to.equal(9)
      expect(await libraries(own.admin)).to.deep.equal([])
      expect((await calls(own.admin)).get('evalsha')).to.be.greaterThan(0)
    } finally {
      await w.close()
      await own.admin.acl('DELUSER', 'nofn')
    }
  })
})
