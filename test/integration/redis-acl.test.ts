/**
 * A Redis user limited to worq's keys and channels (docs/redis.md, "A Redis user for worq"): with
 * the documented ACL a pool starts without a warning and everything runs; with INFO denied too the
 * pool still starts, warns once that the eviction policy could not be read, and runs its tasks.
 * Neither prints anything (ioredis's own line for a refused INFO included).
 */
import { expect } from 'chai'
import { Redis } from 'ioredis'
import { getBroker, TaskSpace, WorkerPool, type TaskContext } from '../../lib/index.js'
import { sharedCluster } from '../helpers/redis-cluster.js'
import { hasBinary, INSTALL, startRedis, type RedisServer } from '../helpers/redis-server.js'
import { uniqueQueue } from '../helpers/util.js'

/** The ACL rules of the documented worq user. */
const RULES = ['~worq:*', '&worq:*', '+@all', '-@dangerous', '+info']

describe('redis: a user limited to worq', () => {
  let server: RedisServer
  let admin: Redis
  before(async () => {
    if (!hasBinary()) throw new Error(INSTALL)
    server = await startRedis()
    admin = new Redis(server.url)
    await admin.acl('SETUSER', 'worq', 'on', '>s3cret', ...RULES)
    await admin.acl('SETUSER', 'noinfo', 'on', '>s3cret', ...RULES.slice(0, -1))
  })
  after(async () => {
    admin?.disconnect()
    await server?.stop()
  })

  /**
   * Runs a pool as `user`: calls, progress, events, listing, a cancel and a purge; its warnings.
   * Fails when anything was printed meanwhile (ioredis prints with `console.warn`).
   */
  async function runAs(user: string, base = server.url): Promise<string[]> {
    const printed: unknown[][] = []
    const { warn, log, error } = console
    console.warn = console.log = console.error = (...args: unknown[]) => void printed.push(args)
    try {
      const warnings = await runPool(base.replace(/^(redis(-cluster)?:\/\/)/, `$1${user}:s3cret@`))
      expect(printed, JSON.stringify(printed)).to.have.length(0)
      return warnings
    } finally {
      Object.assign(console, { warn, log, error })
    }
  }

  async function runPool(url: string): Promise<string[]> {
    const broker = getBroker(url, uniqueQueue('acl')).expose(
      new TaskSpace('', {
        add: (a: number, b: number) => a + b,
        step(this: TaskContext) {
          this.progress(1)
          return 'stepped'
        },
      }),
    )
    const pool = new WorkerPool(broker, { concurrency: 2 })
    const warnings: string[] = []
    const errors: string[] = []
    pool.on('pool:warning', w => warnings.push(w.message))
    pool.on('pool:error', e => errors.push(e.message))
    try {
      await pool.start()
      const events = broker.events()
      const next = events[Symbol.asyncIterator]().next()
      const q = broker.queue()
      const sum = await q.add(1, 2)
      expect(await sum.result(10_000)).to.equal(3)
      expect((await next).value).to.include({ type: 'enqueued', id: sum.id })
      await events.close()
      expect(await (await q.step()).result(10_000)).to.equal('stepped')
      expect((await broker.tasks()).length).to.equal(2)
      await broker.pause()
      const held = await q.add(2, 2)
      expect(await broker.cancel(held.id)).to.equal(true)
      await q.add(3, 3)
      expect(await broker.purge()).to.equal(1)
      await broker.resume()
      expect(errors).to.deep.equal([])
      return warnings
    } finally {
      await pool.stop()
      await broker.close()
    }
  }

  it('with the documented ACL: no warning, and every operation runs', async () => {
    expect(await runAs('worq')).to.deep.equal([])
  })

  it('with INFO denied as well: one warning that the eviction policy could not be read', async () => {
    const warnings = await runAs('noinfo')
    expect(warnings).to.have.length(1)
    expect(warnings[0]).to.match(
      /could not read Redis maxmemory-policy.*may not run INFO.*noeviction/,
    )
  })

  // On a Cluster ioredis makes a connection to each node it uses (7 lines printed before worq
  // quieted them), and one more for the subscriber, whose check it always runs and which no event
  // shows (1 line printed before worq quieted it as ioredis picks its node).
  it('on a Cluster, with INFO denied: nothing printed, for the node connections and ioredis’s subscriber', async () => {
    const cluster = await sharedCluster()
    for (const node of cluster.nodes) {
      const c = new Redis(node.port, '127.0.0.1')
      try {
        await c.acl('SETUSER', 'noinfo', 'on', '>s3cret', ...RULES.slice(0, -1))
      } finally {
        c.disconnect()
      }
    }
    const warnings = await runAs('noinfo', cluster.url)
    expect(warnings).to.have.length(1)
  })
})
