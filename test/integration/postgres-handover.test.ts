import { expect } from 'chai'
import pg from 'pg'
import { getBroker, task, TaskSpace, type Deferred } from '../../lib/index.js'
import { PostgresBackend } from '../../lib/backends/postgres/postgres.js'
import { postgresUrl } from '../helpers/postgres.js'
import { until, withWorker } from '../helpers/util.js'

// Schema version 11: an enqueue hands its tasks to a parked worker (docs/postgres.md, "Handover").
describe('postgres: handover to a parked worker', () => {
  let url: string
  let sql: pg.Client
  before(async () => {
    url = await postgresUrl()
    sql = new pg.Client({ connectionString: url.replace(/\?.*$/, '') })
    await sql.connect()
  })
  after(() => sql.end())

  const ran: string[] = []
  const space = new TaskSpace('h', {
    echo(x: string) {
      ran.push(x)
      return x
    },
  })

  /** The park of the pool's worker, once it is parked for long enough to hand it a task. */
  async function parked(queue: string): Promise<{ worker: string; pid: number }> {
    let row: { worker: string; pid: number } | undefined
    await until(
      async () => {
        const r = await sql.query(
          'SELECT worker, pid FROM worq.parks WHERE queue = $1 AND until > worq.now_ms() + 500',
          [queue],
        )
        row = r.rows[0] as typeof row
        return row !== undefined
      },
      10_000,
      'the worker to park',
    )
    return row!
  }

  /** The stored row of task `id`. */
  async function row(queue: string, id: string) {
    const r = await sql.query(
      'SELECT state, token, finish_tag, attempt, worker_id FROM worq.tasks WHERE queue = $1 AND id = $2',
      [queue, id],
    )
    return r.rows[0] as {
      state: string
      token: string | null
      finish_tag: string | null
      attempt: number
      worker_id: string | null
    }
  }

  it('an idle worker is handed the task by its enqueue and runs it under its handover token', async () => {
    const w = await withWorker(url, b => b.expose(space), { concurrency: 1 })
    try {
      const queue = w.broker.name
      const { worker } = await parked(queue)
      const d = (await w.broker.queue().h.echo('one')) as Deferred<string>
      expect(await d.result(10_000)).to.equal('one')
      const r = await row(queue, d.id)
      expect(r.finish_tag?.startsWith(`${worker}:h`), String(r.finish_tag)).to.equal(true)
      expect(r.attempt).to.equal(1)
    } finally {
      await w.close()
    }
  })

  it('a handover whose notification was lost is read again when the listening connection is back', async () => {
    const w = await withWorker(url, b => b.expose(space), { concurrency: 1 })
    try {
      const queue = w.broker.name
      const { worker, pid } = await parked(queue)
      // The notification goes to a channel nobody hears: lost, as with a dropped connection.
      await sql.query(`UPDATE worq.parks SET origin = 'nobody' WHERE queue = $1`, [queue])
      const d = (await w.broker.queue().h.echo('lost')) as Deferred<string>
      const handed = await row(queue, d.id)
      expect(handed.state).to.equal('processing')
      expect(handed.token?.startsWith(`${worker}:h`)).to.equal(true)
      // The listening connection drops and comes back: the worker reads what it was handed.
      await sql.query('SELECT pg_terminate_backend($1)', [pid])
      expect(await d.result(10_000)).to.equal('lost')
      expect((await row(queue, d.id)).finish_tag).to.equal(handed.token)
    } finally {
      await w.close()
    }
  })

  it('a worker that leaves gives back what it was handed and never took, its attempt uncounted', async () => {
    const w = await withWorker(url, b => b.expose(space), { concurrency: 1 })
    const queue = w.broker.name
    const other = getBroker(url, queue)
    try {
      await parked(queue)
      await sql.query(`UPDATE worq.parks SET origin = 'nobody' WHERE queue = $1`, [queue])
      const d = (await other.queue().h.echo('back')) as Deferred<string>
      expect((await row(queue, d.id)).state).to.equal('processing')
      await w.pool.stop({ timeout: 2000 })
      const back = await row(queue, d.id)
      expect(back.state).to.equal('enqueued')
      expect(back.attempt).to.equal(0)
      // The next worker runs it, on its first attempt.
      const next = await withWorker(url, b => b.expose(space), { concurrency: 1, name: queue })
      try {
        expect(await d.result(10_000)).to.equal('back')
        expect((await row(queue, d.id)).attempt).to.equal(1)
        const { backend } = await other.backend()
        const events = (await backend.readEvents(queue, '0', { count: 1000, blockMs: 0 })).events
        const mine = events.filter(e => e.id === d.id)
        expect(mine.map(e => e.type)).to.deep.equal([
          'enqueued',
          'started',
          'enqueued',
          'started',
          'completed',
        ])
        expect(mine[2]).to.include({ released: true, attempt: 1, workerId: w.pool.id })
        expect(mine[3]).to.include({ attempt: 1, workerId: next.pool.id })
      } finally {
        await next.close()
      }
    } finally {
      await other.close()
      await w.close()
    }
  })

  it('no handover to a process whose listening connection is gone, nor past a task waiting in line', async () => {
    const w = await withWorker(url, b => b.expose(space), { concurrency: 1 })
    const queue = w.broker.name
    try {
      await w.pool.stop({ timeout: 2000 })
      const b = w.broker
      // A park of a process that is gone (no server process has this pid).
      await sql.query(
        `INSERT INTO worq.parks VALUES ($1, 'ghost', 'nobody', 2147483647, 5, worq.now_ms() + 60000)`,
        [queue],
      )
      const gone = (await b.queue().h.echo('a')) as Deferred<string>
      expect((await row(queue, gone.id)).state).to.equal('enqueued')
      // A server process that is there but does not listen (this test's own connection, before
      // it takes the lock a listening connection holds: schema version 19), the line empty:
      // passed over too.
      await sql.query(`DELETE FROM worq.tasks WHERE queue = $1`, [queue])
      await sql.query(`UPDATE worq.parks SET pid = pg_backend_pid() WHERE queue = $1`, [queue])
      const unlocked = (await b.queue().h.echo('u')) as Deferred<string>
      expect((await row(queue, unlocked.id)).state).to.equal('enqueued')
      // A live park (this test's own connection, now holding that lock), and a task waiting in
      // line: the new task waits behind it.
      await sql.query(`SELECT pg_advisory_lock(hashtext('worq.listen'), pg_backend_pid())`)
      const behind = (await b.queue().h.echo('b')) as Deferred<string>
      expect((await row(queue, behind.id)).state).to.equal('enqueued')
      // With the line empty, the same park takes the next one.
      await sql.query(`DELETE FROM worq.tasks WHERE queue = $1`, [queue])
      const third = (await task(b.queue().h.echo, {})('c')) as Deferred<string>
      const r = await row(queue, third.id)
      expect(r.state).to.equal('processing')
      expect(r.worker_id).to.equal('ghost')
    } finally {
      await sql.query(`SELECT pg_advisory_unlock(hashtext('worq.listen'), pg_backend_pid())`)
      await sql.query(`DELETE FROM worq.parks WHERE queue = $1`, [queue])
      await w.close()
    }
  })

  it('a task cancelled while handed over and not yet taken is not passed on to its worker', async () => {
    // A backend of its own, parked by hand: what it is handed waits in it until its worker looks.
    const backend = new PostgresBackend(url, { maxPayloadBytes: 1 << 20 })
    const broker = getBroker(url)
    const queue = broker.name
    try {
      let cancelled!: () => void
      const heard = new Promise<void>(r => (cancelled = r))
      await backend.control(queue, m => {
        if (m.type === 'cancel') cancelled()
      })
      await backend.exchange(queue, 'w', [], 1, { ms: 10_000, slots: 1 })
      const d = (await broker.queue().h.echo('never')) as Deferred<string>
      expect((await row(queue, d.id)).worker_id).to.equal('w')
      expect(await broker.cancel(d.id)).to.equal(true)
      // The cancel is heard after the handover (notifications come in commit order).
      await heard
      expect(await backend.waitForWork(queue, 'w', 50)).to.deep.equal([])
      expect((await backend.exchange(queue, 'w', [], 1)).reserved).to.deep.equal([])
    } finally {
      await broker.purge()
      await broker.close()
      await backend.close()
    }
  })
})
