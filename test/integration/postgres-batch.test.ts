import { expect } from 'chai'
import pg from 'pg'
import { getBroker, task, TaskSpace, type Broker, type QueueEvent } from '../../lib/index.js'
import { newTask } from '../helpers/new-task.js'
import { freshDatabase } from '../helpers/postgres.js'
import { until } from '../helpers/util.js'

/**
 * A batch of plain calls is one statement whose rows carry only what differs from the defaults
 * (lib/backends/postgres/enqueue.ts): every option of every call of a tick must reach its row.
 */
describe('postgres: a batch of plain calls', () => {
  let url: string
  let broker: Broker
  let client: pg.Client
  before(async () => {
    url = await freshDatabase()
    broker = getBroker(url, 'batch')
    broker.expose(new TaskSpace('', { add: (a: number, b: number) => a + b }))
    client = new pg.Client({ connectionString: url })
    await client.connect()
  })
  after(async () => {
    await client.end()
    await broker.close()
  })

  /** The stored columns of the rows of `ids`, in that order. */
  async function rows(ids: string[]) {
    const r = await client.query(
      `SELECT id, state, on_error, ignore_result, result_timeout, heartrate, attempts, backoff,
         run_at, timeout, priority, metadata, trace, origin IS NOT NULL AS has_origin
       FROM worq.tasks WHERE queue = 'batch' AND id = ANY ($1)`,
      [ids],
    )
    return ids.map(id => r.rows.find(row => row.id === id))
  }

  it('keeps each call’s own options, defaults left out of the row included', async () => {
    const q = broker.queue()
    const runAt = Date.now() + 3_600_000
    const ignoredId = `ignored-${runAt}`
    const exponential = { type: 'exponential', delay: 100, maxDelay: 5_000 } as const
    // One tick: one batch, with a backoff that differs between its calls.
    const calls = await Promise.all([
      q.add(1, 1),
      task(q.add, { priority: -7, metadata: { who: 'ada' } })(2, 2),
      task(q.add, { attempts: 3, backoff: exponential, onError: 'pass' })(3, 3),
      task(q.add, { ignoreResult: true, timeout: 1_500, id: ignoredId })(4, 4),
      task(q.add, { runAt: new Date(runAt), resultTimeout: 90_000, heartrate: 2_000 })(5, 5),
    ])
    // An ignoreResult call gives no Deferred: its id is the one given.
    const ids = calls.map(d => d?.id ?? ignoredId)
    const [plain, prio, retried, ignored, delayed] = await rows(ids)
    expect(plain).to.include({ state: 'enqueued', on_error: 'fail', ignore_result: false })
    expect(plain).to.include({ run_at: '0', timeout: '0', priority: 0, metadata: '', trace: '' })
    expect(plain).to.include({ has_origin: true, attempts: 1 })
    expect(prio).to.include({ priority: -7, metadata: JSON.stringify({ who: 'ada' }) })
    expect(retried).to.include({ attempts: 3, on_error: 'pass' })
    expect(retried!.backoff).to.include({ type: 'exponential', delay: 100, maxDelay: 5_000 })
    expect(plain!.backoff).to.not.deep.equal(retried!.backoff)
    expect(ignored).to.include({ ignore_result: true, timeout: '1500', has_origin: false })
    expect(delayed).to.include({ state: 'delayed', run_at: String(runAt) })
    expect(delayed).to.include({ result_timeout: '90000', heartrate: '2000' })
  })

  it('a batch of generated ids goes without the check for ids taken; one taken all the same answers as with it', async () => {
    const { backend } = await broker.backend()
    const stamp = Date.now()
    const ids = Array.from({ length: 30 }, (_, i) => `fresh-${stamp}-${i}`)
    const first = ids.map(id => newTask(id))
    expect(await backend.enqueue('batch', first)).to.deep.equal(ids.map(() => 'ok'))
    // The same ids again, generated as far as the batch knows (this is what a batch sent again
    // after a lost reply meets): the statement fails on the first id taken, writes nothing, and
    // the batch goes task by task; the tasks are live, so each is a duplicate.
    const again = [...ids.slice(0, 10).map(id => newTask(id)), newTask(`fresh-${stamp}-new`)]
    expect(await backend.enqueue('batch', again)).to.deep.equal([
      ...ids.slice(0, 10).map(() => 'duplicate'),
      'ok',
    ])
    // A chosen id in the batch: the check for ids taken, no failed statement.
    const chosen = [ids[0]!, `chosen-${stamp}`].map(id => newTask(id, { idChosen: true }))
    expect(await backend.enqueue('batch', chosen)).to.deep.equal(['duplicate', 'ok'])
    const { rows: counted } = await client.query(
      `SELECT count(*)::integer AS n FROM worq.tasks WHERE queue = 'batch' AND id LIKE $1`,
      [`%-${stamp}%`],
    )
    expect(counted[0].n).to.equal(32)
  })

  it('stores the backoff the whole batch shares with every task of it', async () => {
    const q = broker.queue()
    const fixed = { type: 'fixed', delay: 250 } as const
    const calls = await Promise.all(
      Array.from({ length: 30 }, (_, i) => task(q.add, { attempts: 2, backoff: fixed })(i, 1)),
    )
    const stored = await rows(calls.map(d => d!.id))
    for (const row of stored) {
      expect(row!.attempts).to.equal(2)
      expect(row!.backoff).to.include({ type: 'fixed', delay: 250 })
    }
  })

  it("a tick's calls reach the server as one statement, however many (no early part)", async () => {
    const b = getBroker(url, 'batch-tick')
    try {
      const q = b.queue('', { ignoreResult: true })
      await q.warm()
      /** The queue's rows in `table`. */
      const countIn = async (table: string) =>
        Number(
          (await client.query(`SELECT count(*) AS n FROM worq.${table} WHERE queue = 'batch-tick'`))
            .rows[0].n,
        )
      // Each statement of a plain batch writes one inbox row of `enqueued` events (no worker is
      // parked and nothing folds the inbox here), so the rows count the statements.
      const statements = async (calls: number) => {
        const before = await countIn('inbox')
        await Promise.all(Array.from({ length: calls }, (_, i) => q.add(i, 1)))
        return (await countIn('inbox')) - before
      }
      const first = await countIn('tasks')
      expect(await statements(10)).to.equal(1)
      expect(await statements(60)).to.equal(1)
      expect(await statements(600)).to.equal(1)
      expect((await countIn('tasks')) - first).to.equal(670)
    } finally {
      await b.close()
    }
  })

  /** The queue's events from the start, once `count` have come. */
  async function events(b: Broker, count: number): Promise<QueueEvent[]> {
    const stream = b.events({ since: '0' })
    const seen: QueueEvent[] = []
    stream.on('*', e => seen.push(e))
    try {
      await until(() => seen.length >= count, 10_000, `${count} events`)
    } finally {
      await stream.close()
    }
    return seen
  }

  it('records every call of a batch as enqueued, in order, with its name and time', async () => {
    const b = getBroker(url, 'batch-events')
    try {
      const q = b.queue()
      const before = Date.now()
      const calls = await Promise.all(Array.from({ length: 40 }, (_, i) => q.add(i, 1)))
      const seen = await events(b, 40)
      expect(seen.map(e => e.type)).to.deep.equal(calls.map(() => 'enqueued'))
      expect(seen.map(e => e.id)).to.deep.equal(calls.map(d => d.id))
      for (const e of seen) {
        expect(e).to.include({ name: 'add', queue: 'batch-events' })
        expect(e.time.getTime()).to.be.within(before - 1_000, Date.now() + 1_000)
      }
      expect(seen.map(e => Number(e.eventId))).to.deep.equal(seen.map((_, i) => i + 1))
    } finally {
      await b.close()
    }
  })

  it('folds events written the previous version’s way (an object each) as before', async () => {
    const b = getBroker(url, 'batch-old')
    try {
      await b.size() // the schema, made or migrated
      const time = Date.now()
      const es = ['a', 'b', 'c'].map(id => ({ type: 'enqueued', id, name: 'old.task', time }))
      await client.query(`INSERT INTO worq.inbox (queue, body) VALUES ('batch-old', $1)`, [
        JSON.stringify({ es }),
      ])
      const q = b.queue()
      const [d, e] = await Promise.all([q.add(1, 2), q.add(3, 4)])
      const seen = await events(b, 5)
      expect(seen.map(x => x.id)).to.deep.equal(['a', 'b', 'c', d!.id, e!.id])
      expect(seen.slice(0, 3).map(x => x.name)).to.deep.equal(['old.task', 'old.task', 'old.task'])
      expect(seen[0]!.time.getTime()).to.equal(time)
      expect(seen[3]).to.include({ type: 'enqueued', name: 'add' })
    } finally {
      await b.close()
    }
  })
})
