import { expect } from 'chai'
import pg from 'pg'
import { getBroker, task, TaskSpace, type Broker } from '../../lib/index.js'
import { freshDatabase } from '../helpers/postgres.js'

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
})
