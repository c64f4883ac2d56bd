/**
 * A PostgreSQL server with no connection left for worq (SQLSTATE 53300: `max_connections`, or the
 * role's CONNECTION LIMIT, reached): operations wait for a connection as they wait for a server
 * that is away, and fail within `connectTimeoutMs` with BackendUnreachable saying what to change.
 * The limit is a role's (superusers are exempt from it), on a database of the test's own.
 */
import { expect } from 'chai'
import { randomBytes } from 'node:crypto'
import pg from 'pg'
import { BackendUnreachable, getBroker, TaskSpace, WorkerPool } from '../../lib/index.js'
import { freshDatabase } from '../helpers/postgres.js'
import { uniqueQueue } from '../helpers/util.js'

describe('postgres: no connection left', function () {
  this.timeout(60_000)
  const role = `worq_limited_${randomBytes(4).toString('hex')}`
  let admin: pg.Client
  let url: string

  before(async () => {
    const db = await freshDatabase()
    admin = new pg.Client({ connectionString: db })
    await admin.connect()
    const name = new URL(db).pathname.slice(1)
    await admin.query(`CREATE ROLE ${role} LOGIN`)
    await admin.query(`GRANT CREATE ON DATABASE ${name} TO ${role}`)
    const u = new URL(db)
    u.username = role
    url = u.toString()
  })

  after(async () => {
    if (!admin) return
    await admin.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1`, [
      role,
    ])
    await admin.query(`DROP OWNED BY ${role} CASCADE`)
    await admin.query(`DROP ROLE IF EXISTS ${role}`)
    await admin.end()
  })

  const limit = (n: number) => admin.query(`ALTER ROLE ${role} CONNECTION LIMIT ${n}`)

  it('with one connection for the pool, calls made at once wait their turn and a pool runs its tasks', async () => {
    await limit(-1)
    const queue = uniqueQueue('limit')
    const boot = getBroker(url, queue)
    await boot.size() // migrates with room to do it
    await boot.close()
    await limit(2) // the listening connection and one more
    const broker = getBroker(url, queue).expose(
      new TaskSpace('', { add: (a: number, b: number) => a + b }),
    )
    const pool = new WorkerPool(broker, { concurrency: 5 })
    const errors: Error[] = []
    pool.on('pool:error', err => errors.push(err))
    try {
      await pool.start() // its listening connection takes one of the two
      // The backend's pool opens a connection per statement under way (up to ?pool=, 10): all
      // but one of these find no slot, wait, and run on the one connection there is.
      const sizes = await Promise.all(Array.from({ length: 20 }, () => broker.size()))
      expect(sizes).to.deep.equal(Array(20).fill(0))
      const calls = await Promise.all(
        Array.from({ length: 50 }, (_, i) => broker.queue().add(i, 1)),
      )
      const values = await Promise.all(calls.map(d => d.result(30_000)))
      expect(values).to.deep.equal(Array.from({ length: 50 }, (_, i) => i + 1))
      expect(errors.map(e => e.message)).to.deep.equal([])
    } finally {
      await pool.stop()
      await broker.close()
    }
  })

  it('with none, a call and a pool start fail within connectTimeoutMs with BackendUnreachable naming the limit and ?pool=', async () => {
    await limit(0)
    const broker = getBroker(url, uniqueQueue('limit'), { connectTimeoutMs: 1000 })
    try {
      const started = Date.now()
      const err = await broker.size().then(
        () => expect.fail('size() answered without a connection'),
        (e: unknown) => e,
      )
      expect(Date.now() - started).to.be.below(4000)
      expect(err).to.be.instanceOf(BackendUnreachable)
      expect((err as Error).message).to.match(
        /too many connections.*53300.*max_connections or the role's CONNECTION LIMIT, or lower \?pool=/,
      )
      // A pool whose start fails is left stopped: stop() resolves, and nothing keeps running.
      const pool = new WorkerPool(broker)
      const failed = await pool.start().then(
        () => expect.fail('the pool started without a connection'),
        (e: unknown) => e,
      )
      expect(failed).to.be.instanceOf(BackendUnreachable)
      await pool.stop()
      expect(pool.running).to.equal(0)
    } finally {
      await broker.close()
      await limit(-1)
    }
  })
})
