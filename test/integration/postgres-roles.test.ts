/**
 * A migrating role and an application's role: a role that may not create worq's schema gets
 * MigrationDenied (saying what to run and grant) and changes nothing; once `worq migrate <url>
 * --grant <role>` ran as the database's owner, the application's role runs tasks, cancels, lists,
 * reports progress, reads metrics and events, configures and purges, without owning anything.
 */
import { expect } from 'chai'
import { randomBytes } from 'node:crypto'
import pg from 'pg'
import {
  getBroker,
  MigrationDenied,
  task,
  TaskSpace,
  WorkerPool,
  type TaskContext,
} from '../../lib/index.js'
import { worq } from '../helpers/cli.js'
import { freshDatabase } from '../helpers/postgres.js'
import { uniqueQueue } from '../helpers/util.js'

describe('postgres: a role that uses worq without owning its schema', function () {
  this.timeout(60_000)
  const role = `worq_app_${randomBytes(4).toString('hex')}`
  let owner: string
  let app: string
  let admin: pg.Client

  before(async () => {
    owner = await freshDatabase()
    admin = new pg.Client({ connectionString: owner })
    await admin.connect()
    await admin.query(`CREATE ROLE ${role} LOGIN`)
    const u = new URL(owner)
    u.username = role
    app = u.toString()
  })

  after(async () => {
    if (!admin) return
    await admin.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1', [
      role,
    ])
    await admin.query(`DROP OWNED BY ${role} CASCADE`)
    await admin.query(`DROP ROLE IF EXISTS ${role}`)
    await admin.end()
  })

  it('before the migration: MigrationDenied, and no schema made', async () => {
    const broker = getBroker(app, uniqueQueue('roles'))
    try {
      const err = await broker.size().then(
        () => expect.fail('a role without CREATE made the schema'),
        (e: unknown) => e,
      )
      expect(err).to.be.instanceOf(MigrationDenied)
      expect(err).to.include({ code: 'ERR_WORQ_MIGRATION_DENIED' })
      expect((err as Error).message).to.match(/permission denied.*worq migrate <url>.*USAGE/)
      const { rows } = await admin.query(`SELECT to_regnamespace('worq')::text AS s`)
      expect(rows[0].s).to.equal(null)
    } finally {
      await broker.close()
    }
  })

  it('after `worq migrate <url> --grant <role>`: the role runs the queue', async () => {
    const cli = worq(['migrate', owner, '--grant', role])
    expect((await cli.exited).code).to.equal(0)
    expect(cli.lines.join('\n')).to.match(new RegExp(`role ${role} may use schema worq`))

    const queue = uniqueQueue('roles')
    const broker = getBroker(app, queue)
    let release!: () => void
    const gate = new Promise<void>(r => (release = r))
    broker.expose(
      new TaskSpace('', {
        add: (a: number, b: number) => a + b,
        async held(this: TaskContext) {
          this.progress(0.5)
          await gate
          return 'held'
        },
        async blocked(this: TaskContext) {
          await new Promise((_, reject) =>
            this.signal.addEventListener('abort', () => reject(this.signal.reason)),
          )
        },
      }),
    )
    const pool = new WorkerPool(broker, { concurrency: 4 })
    const errors: Error[] = []
    pool.on('pool:error', err => errors.push(err))
    try {
      await pool.start()
      await broker.configure({ events: true, metrics: true, listing: true })
      await broker.limit('add', { concurrency: 2 })
      await broker.schedule('nightly', { cron: '0 3 * * *' }, broker.queue().add, 1, 1)
      expect((await broker.schedules()).map(s => s.id)).to.deep.equal(['nightly'])
      await broker.pause()
      await broker.resume()
      const events = broker.events()
      const iterator = events[Symbol.asyncIterator]()
      const q = broker.queue()
      const first = await q.add(1, 2)
      expect(await first.result(10_000)).to.equal(3)
      expect((await iterator.next()).value).to.include({ type: 'enqueued', id: first.id })
      await events.close()
      const held = await q.held()
      const progressed = new Promise(r => held.onProgress(r))
      expect(await progressed).to.equal(0.5)
      const blocked = await q.blocked()
      await new Promise<void>(r => pool.on('task:start', e => e.id === blocked.id && r()))
      expect(await blocked.cancel()).to.equal(true)
      release()
      expect(await held.result(10_000)).to.equal('held')
      expect((await broker.tasks({ limit: 10 })).length).to.equal(3)
      expect(await broker.unschedule('nightly')).to.equal(true)
      expect((await broker.metrics()).totals.completed).to.be.greaterThan(0)
      const later = await task(q.add, { delay: 60_000 })(2, 2)
      expect(await broker.purge()).to.equal(1)
      expect(await later.status()).to.equal('cancelled')
      expect(errors.map(e => e.message)).to.deep.equal([])
    } finally {
      release()
      await pool.stop()
      await broker.close()
    }
  })
})
