import { expect } from 'chai'
import pg from 'pg'
import { getBroker, TaskSpace, WorkerPool, type QueueEvent } from '../../lib/index.js'
import { freshDatabase } from '../helpers/postgres.js'
import { timeBucket } from '../../lib/backends/backend.js'
import { uniqueQueue, until } from '../helpers/util.js'

/** Reads the events of `broker`'s queue from the start until event number `last` has arrived. */
async function readAll(broker: ReturnType<typeof getBroker>, last: number): Promise<QueueEvent[]> {
  const events = broker.events({ since: '0' })
  const seen: QueueEvent[] = []
  events.on('*', e => seen.push(e))
  try {
    await until(() => seen.at(-1)?.eventId === String(last), 20_000, `event ${last}`)
  } finally {
    await events.close()
  }
  return seen
}

describe('postgres: schema versions 4 to 9 (events a set per row, the metrics fold)', () => {
  let url: string
  let db: pg.Client
  before(async () => {
    url = await freshDatabase()
    db = new pg.Client({ connectionString: url })
    await db.connect()
  })
  after(() => db.end())

  const rows = async (queue: string) =>
    (
      await db.query<{ n: string; count: number; len: number }>(
        `SELECT n, count, jsonb_array_length(body) AS len FROM worq.events WHERE queue = $1
         ORDER BY n`,
        [queue],
      )
    ).rows

  it("a fold moves a batch's events in rows of 1 000, and readers get every event numbered in order", async () => {
    const queue = uniqueQueue('sets')
    const broker = getBroker(url, queue)
    try {
      const q = broker.queue()
      await Promise.all(Array.from({ length: 2500 }, (_, i) => q.f(i)))
      const seen = await readAll(broker, 2500)
      expect(seen.map(e => Number(e.eventId))).to.deep.equal(seen.map((_, i) => i + 1))
      expect(seen.every(e => e.type === 'enqueued')).to.equal(true)
      const sets = await rows(queue)
      // Events 1 … 2500 in a few rows (a fold's events in rows of up to 1 000), each row's count its
      // array's length.
      expect(sets.length).to.be.within(3, 25)
      let next = 1
      for (const r of sets) {
        expect(Number(r.n)).to.equal(next)
        expect(r.len).to.equal(r.count)
        expect(r.count).to.be.within(1, 1000)
        next += r.count
      }
      expect(next).to.equal(2501)
    } finally {
      await broker.purge()
      await broker.close()
    }
  })

  it('a fold writes the events of many steps together: 40 sequential calls, one events row', async () => {
    const queue = uniqueQueue('runs')
    const broker = getBroker(url, queue)
    try {
      const q = broker.queue()
      await broker.metrics() // migrates, and folds nothing yet
      // Each call its own enqueue statement, its own inbox row.
      for (let i = 0; i < 40; i++) await q.f(i)
      await broker.metrics() // folds the inbox
      expect(await rows(queue)).to.deep.equal([{ n: '1', count: 40, len: 40 }])
      const seen = await readAll(broker, 40)
      expect(seen.map(e => Number(e.eventId))).to.deep.equal(seen.map((_, i) => i + 1))
      expect(seen.map(e => e.type)).to.deep.equal(new Array(40).fill('enqueued'))
    } finally {
      await broker.purge()
      await broker.close()
    }
  })

  it('a fold has a lock of its own: with it held, calls run and complete, and their events follow', async () => {
    const queue = uniqueQueue('apart')
    const broker = getBroker(url, queue)
    const pool = new WorkerPool(broker, { concurrency: 4 })
    const holder = new pg.Client({ connectionString: url })
    await holder.connect()
    try {
      broker.expose(new TaskSpace('', { echo: (x: number) => x }))
      await pool.start()
      const q = broker.queue()
      expect(await (await q.echo(0)).result(10_000)).to.equal(0)
      await broker.metrics() // folds: the queue's folds row exists
      // Every exchange from now on finds the last fold long past and asks for one, which cannot
      // take the row the holder locks.
      await holder.query('UPDATE worq.folds SET folded_at = 0 WHERE queue = $1', [queue])
      await holder.query('BEGIN')
      await holder.query('SELECT * FROM worq.folds WHERE queue = $1 FOR UPDATE', [queue])
      for (let i = 1; i <= 20; i++) expect(await (await q.echo(i)).result(10_000)).to.equal(i)
      const waiting = await holder.query<{ n: string }>(
        'SELECT count(*) AS n FROM worq.inbox WHERE queue = $1',
        [queue],
      )
      expect(Number(waiting.rows[0]!.n)).to.be.above(0)
      await holder.query('COMMIT')
      const seen = await readAll(broker, 63) // 21 calls: enqueued, started, completed each
      expect(seen.map(e => Number(e.eventId))).to.deep.equal(seen.map((_, i) => i + 1))
      expect(seen.filter(e => e.type === 'completed')).to.have.length(21)
    } finally {
      await holder.query('ROLLBACK').catch(() => undefined)
      await holder.end()
      await pool.stop()
      await broker.purge()
      await broker.close()
    }
  })

  it('an operation that takes the queue’s lock folds before it takes it: while it waits for a fold, calls run and complete (version 9)', async () => {
    const queue = uniqueQueue('lockfold')
    const broker = getBroker(url, queue)
    const pool = new WorkerPool(broker, { concurrency: 4 })
    const holder = new pg.Client({ connectionString: url })
    await holder.connect()
    try {
      broker.expose(new TaskSpace('', { echo: (x: number) => x }))
      await pool.start()
      const q = broker.queue()
      expect(await (await q.echo(0)).result(10_000)).to.equal(0)
      await broker.metrics() // folds: the queue's folds row exists
      await holder.query('BEGIN')
      await holder.query('SELECT * FROM worq.folds WHERE queue = $1 FOR UPDATE', [queue])
      // A cancel (of an unknown id) folds, then takes the queue's lock: it waits for the fold's.
      const cancelled = broker.cancel('no-such-task')
      await until(
        async () => {
          const { rows } = await db.query(
            `SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%cancel(%'`,
          )
          return rows.length > 0
        },
        10_000,
        'the cancel to wait for the fold’s lock',
      )
      // Until version 9 it waited holding the queue's lock, and no exchange could run.
      for (let i = 1; i <= 10; i++) expect(await (await q.echo(i)).result(10_000)).to.equal(i)
      await holder.query('COMMIT')
      expect(await cancelled).to.equal(false)
      const seen = await readAll(broker, 33) // 11 calls: enqueued, started, completed each
      expect(seen.filter(e => e.type === 'completed')).to.have.length(11)
    } finally {
      await holder.query('ROLLBACK').catch(() => undefined)
      await holder.end()
      await pool.stop()
      await broker.purge()
      await broker.close()
    }
  })

  it('trimming drops whole rows and keeps at least the last eventsMax events', async () => {
    const queue = uniqueQueue('trim')
    const broker = getBroker(url, queue)
    try {
      await broker.configure({ eventsMax: 100 })
      const q = broker.queue()
      // Six folds of 60 events (reading the metrics folds the inbox).
      for (let round = 0; round < 6; round++) {
        await Promise.all(Array.from({ length: 60 }, (_, i) => q.f(round * 60 + i)))
        await broker.metrics()
      }
      const seen = await readAll(broker, 360)
      // Behind what is kept: a gap first, then events from the oldest row kept to the last.
      expect(seen[0]!.type).to.equal('gap')
      const ids = seen.slice(1).map(e => Number(e.eventId))
      expect(ids.at(-1)).to.equal(360)
      expect(ids).to.deep.equal(ids.map((_, i) => ids[0]! + i))
      expect(ids.length).to.be.at.least(100)
      const sets = await rows(queue)
      expect(Number(sets[0]!.n)).to.equal(ids[0])
      // No row is kept whose every event is older than the last 100.
      for (const r of sets) expect(Number(r.n) + r.count - 1).to.be.above(360 - 100)
    } finally {
      await broker.purge()
      await broker.close()
    }
  })

  it("a duration's histogram bucket is timeBucket's, and a list of buckets counts as 22", async () => {
    // Every power of two to 2^22 and its neighbours, and values far beyond.
    const ms = [-5, 0, 1, 2_000_000_000_000]
    for (let b = 1; b <= 22; b++) ms.push(2 ** b - 1, 2 ** b, 2 ** b + 1)
    const broker = getBroker(url, uniqueQueue('buckets'))
    try {
      await broker.size() // migrates the database
      const got = await db.query<{ b: number }>(
        'SELECT worq.bucket(x) AS b FROM unnest($1::bigint[]) WITH ORDINALITY u(x, i) ORDER BY i',
        [ms],
      )
      expect(got.rows.map(r => r.b)).to.deep.equal(ms.map(timeBucket))
      const buckets = [0, 0, 3, 21, 21, 21, 7]
      const h = await db.query<{ h: string[] }>('SELECT worq.histogram($1::integer[]) AS h', [
        buckets,
      ])
      const want = Array.from({ length: 22 }, (_, i) => buckets.filter(b => b === i).length)
      expect(h.rows[0]!.h.map(Number)).to.deep.equal(want)
      const empty = await db.query<{ h: string[] }>("SELECT worq.histogram('{}') AS h")
      expect(empty.rows[0]!.h.map(Number)).to.deep.equal(new Array(22).fill(0))
    } finally {
      await broker.close()
    }
  })
})
