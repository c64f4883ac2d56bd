import { expect } from 'chai'
import pg from 'pg'
import { getBroker, task, TaskSpace, type Broker } from '../../lib/index.js'
import type { ReservedTask } from '../../lib/backends/backend.js'
import { decodeReserved, exchangeSql } from '../../lib/backends/postgres/reserved.js'
import { freshDatabase } from '../helpers/postgres.js'

/**
 * Since schema version 8 the exchange sends each reserved task as an array of its fields, when its
 * statement asks (lib/backends/postgres/reserved.ts); a process of an earlier version, which does
 * not ask, still gets objects. Both must carry the same task.
 */
describe('postgres: a reservation as an array (schema version 8)', () => {
  let url: string
  let broker: Broker
  let client: pg.Client
  before(async () => {
    url = await freshDatabase()
    broker = getBroker(url, 'rows')
    broker.expose(new TaskSpace('', { add: (a: number, b: number) => a + b }))
    await broker.size() // migrated
    client = new pg.Client({ connectionString: url })
    await client.connect()
  })
  after(async () => {
    await client.end()
    await broker.close()
  })

  /** What two reservations of calls made alike share: all but the call's own id and arguments. */
  function alike({ id: _i, token: _t, payload: _p, dueAt: _d, cache, ...rest }: ReservedTask) {
    return { ...rest, cache: cache && { ttl: cache.ttl, template: cache.template !== '' } }
  }

  it('carries every field an earlier version reads from an object', async () => {
    const options = {
      priority: -3,
      metadata: { who: 'ada' },
      attempts: 4,
      backoff: { type: 'exponential', delay: 50, maxDelay: 900 },
      onError: 'pass',
      timeout: 1_500,
      heartrate: 2_000,
      resultTimeout: 90_000,
      cache: { ttl: 60_000 },
    } as const
    const add = task(broker.queue().add, options)
    const [first, second] = await Promise.all([add(1, 2), add(3, 4)])
    const exchange = (sql: string, worker: string, more: unknown[] = []) =>
      client
        .query(sql, ['rows', worker, '[]', 1, ...more])
        .then(r => r.rows[0].v.reserved as unknown[])

    // As a process of version 7 asks: no setting, an object.
    const [asObject] = await exchange(`SELECT worq.exchange($1, $2, $3::jsonb, $4) AS v`, 'old')
    expect(Array.isArray(asObject)).to.equal(false)
    // As this version asks: an array of the fields.
    const [asArray] = await exchange(exchangeSql('worq'), 'new', [0, 0, '', 0, 'call1', 'off'])
    expect(asArray).to.be.an('array').with.length(20)

    // The object as an earlier version reads it (postgres.ts before version 8).
    const o = asObject as Omit<ReservedTask, 'cache' | 'slots'> & {
      cache: ReservedTask['cache'] | null
      slots: string[] | null
    }
    const a: ReservedTask = { ...o, cache: o.cache ?? undefined, slots: o.slots ?? [] }
    const b = decodeReserved(asArray)
    expect([a.id, b.id]).to.deep.equal([first!.id, second!.id])
    expect(alike(b)).to.deep.equal(alike(a))
    expect(b).to.include({ priority: -3, attempts: 4, onError: 'pass', timeout: 1_500 })
    expect(b).to.include({ heartrate: 2_000, resultTimeout: 90_000, attempt: 1, runAt: 0 })
    expect(b).to.include({ metadata: JSON.stringify({ who: 'ada' }), trace: '', name: 'add' })
    expect(b.backoff).to.include({ type: 'exponential', delay: 50, maxDelay: 900 })
    expect(b.cache?.ttl).to.equal(60_000)
    expect(b.slots).to.deep.equal([])
    // Version 22: the token names the exchange's call (a call sent again finds it); without a
    // call, as an earlier version asks, it does not.
    expect(b.token).to.match(/^new:ccall1\.\d+$/)
    expect(a.token).to.match(/^old:\d+$/)
    expect(b.deps).to.deep.equal([])
    expect(b.token).to.match(/^new:/)
    expect(b.dueAt).to.be.a('number')
    const stored = await client.query(`SELECT payload FROM worq.tasks WHERE id = $1`, [b.id])
    expect(b.payload).to.equal(stored.rows[0].payload)
  })
})
