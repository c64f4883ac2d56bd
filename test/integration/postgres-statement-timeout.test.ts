/**
 * A worq statement cancelled by the server's `statement_timeout` (set on the test's own database,
 * 300 ms) while another session holds the lock it waits for: the operation fails with
 * StatementTimeout, nothing of it is written, and a worker's finish is kept and sent again.
 */
import { expect } from 'chai'
import pg from 'pg'
import { getBroker, StatementTimeout, WorkerPool, type Deferred } from '../../lib/index.js'
import { freshDatabase } from '../helpers/postgres.js'
import { latch, uniqueQueue } from '../helpers/util.js'

describe('postgres: statement timeout', function () {
  this.timeout(60_000)
  let url: string
  let admin: pg.Client

  before(async () => {
    const db = await freshDatabase()
    const boot = getBroker(db, 'boot')
    await boot.size() // migrates before the timeout is set
    await boot.close()
    admin = new pg.Client({ connectionString: db })
    await admin.connect()
    const name = new URL(db).pathname.slice(1)
    await admin.query(`ALTER DATABASE ${name} SET statement_timeout = '300ms'`)
    // A URL of its own: a backend whose connections are made from now on, under the timeout.
    url = `${db}?application_name=worq-timeout`
  })

  after(async () => {
    await admin?.end()
  })

  it('an enqueue that waits past statement_timeout fails with StatementTimeout, writes nothing, and succeeds when sent again', async () => {
    const queue = uniqueQueue('st-enqueue')
    const broker = getBroker(url, queue)
    broker.expose(function echo(x: string) {
      return x
    })
    const runs: string[] = []
    broker.expose(function count(x: string) {
      runs.push(x)
      return x
    })
    try {
      await broker.size()
      // Another session holds a lock the enqueue's INSERT waits for.
      await admin.query('BEGIN')
      await admin.query('LOCK TABLE worq.tasks IN SHARE MODE')
      let err: unknown
      try {
        err = await broker
          .queue()
          .count('a')
          .then(
            () => undefined,
            (e: unknown) => e,
          )
      } finally {
        await admin.query('ROLLBACK')
      }
      expect(err).to.be.instanceOf(StatementTimeout)
      const e = err as StatementTimeout
      expect(e.code).to.equal('ERR_WORQ_STATEMENT_TIMEOUT')
      expect(e.operation).to.equal('enqueue')
      expect(e.setting).to.equal('statement_timeout')
      expect(e.message)
        .to.match(/statement_timeout/)
        .and.match(/ALTER ROLE/)
      expect((e.cause as { code?: string }).code).to.equal('57014')
      // Nothing of the call was written.
      const { rows } = await admin.query(
        'SELECT count(*)::int AS n FROM worq.tasks WHERE queue = $1',
        [queue],
      )
      expect(rows[0].n).to.equal(0)
      // Sent again, it runs once.
      const pool = new WorkerPool(broker, { concurrency: 1 })
      await pool.start()
      try {
        const d = (await broker.queue().count('a')) as Deferred<string>
        expect(await d.result(10_000)).to.equal('a')
        expect(runs).to.deep.equal(['a'])
      } finally {
        await pool.stop({ timeout: 5_000 })
      }
    } finally {
      await broker.close()
    }
  })

  it("a worker's exchange that waits past statement_timeout is reported as StatementTimeout, and its finish is sent again: the task completes once", async () => {
    const queue = uniqueQueue('st-exchange')
    const broker = getBroker(url, queue)
    const gate = latch()
    const started = latch()
    let runs = 0
    broker.expose(async function held(x: string) {
      runs++
      started.resolve()
      await gate.promise
      return x
    })
    const pool = new WorkerPool(broker, { concurrency: 1 })
    const errors: Array<Error & { code?: string }> = []
    const reported = latch()
    pool.on('pool:error', err => {
      errors.push(err)
      if ((err as Partial<StatementTimeout>).operation === 'exchange') reported.resolve()
    })
    try {
      await pool.start()
      const d = (await broker.queue().held('x')) as Deferred<string>
      await started.promise
      // Another session holds the queue's row lock: the exchange that finishes the task waits.
      await admin.query('BEGIN')
      await admin.query('SELECT 1 FROM worq.queues WHERE name = $1 FOR UPDATE', [queue])
      try {
        gate.resolve()
        await reported.promise
      } finally {
        await admin.query('COMMIT')
      }
      expect(await d.result(10_000)).to.equal('x')
      expect(runs).to.equal(1)
      expect(errors.length).to.be.greaterThan(0)
      for (const e of errors) {
        expect(e).to.be.instanceOf(StatementTimeout)
        expect(e.code).to.equal('ERR_WORQ_STATEMENT_TIMEOUT')
      }
      expect(errors.map(e => (e as StatementTimeout).operation)).to.include('exchange')
    } finally {
      await pool.stop({ timeout: 5_000 })
      await broker.close()
    }
  })
})
