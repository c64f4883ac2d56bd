/**
 * A PostgreSQL server restarted (`pg_ctl restart -m fast`) and crashed (`-m immediate`) under a
 * producer and a worker, on a private server (test/helpers/postgres-server.ts) so that the shared
 * one is never touched. The test's witness of outcomes is a trigger on the task table that records
 * every change of a row to `done`: one per task, whatever the callers saw.
 */
import { expect } from 'chai'
import pg from 'pg'
import { getBroker, task, WorkerPool, type Broker, type Deferred } from '../../lib/index.js'
import { startPostgresServer, type PostgresServer } from '../helpers/postgres-server.js'
import { latch, uniqueQueue } from '../helpers/util.js'

const HEARTRATE = 100
const SWEEP = 100

/** A worker pool on a backend of its own (another URL: its own connections, as another process). */
function worker(url: string, queue: string) {
  const broker = getBroker(`${url}?application_name=worq-worker`, queue)
  const runs = new Map<string, number>()
  broker.expose(async function work(id: string, ms: number) {
    runs.set(id, (runs.get(id) ?? 0) + 1)
    await new Promise(r => setTimeout(r, ms))
    return id
  })
  const pool = new WorkerPool(broker, { concurrency: 8, sweepInterval: SWEEP })
  const lost = new Set<string>()
  const errors: Array<Error & { code?: string }> = []
  pool.on('lease:lost', e => lost.add(e.id))
  pool.on('pool:error', err => errors.push(err))
  return { broker, pool, runs, lost, errors }
}

let batch = 0

/** Enqueues `n` calls; each returns its own `b<batch>-<i>`. */
async function send(broker: Broker, n: number, ms: number) {
  const prefix = `b${batch++}-`
  const f = task(broker.queue().work, { attempts: 3, heartrate: HEARTRATE, resultTimeout: 60_000 })
  const ids = Array.from({ length: n }, (_, i) => `${prefix}${i}`)
  const ds = (await Promise.all(ids.map(id => f(id, ms)))) as Array<Deferred<string>>
  return ds.map((d, i) => [d, ids[i]!] as const)
}

describe('postgres: server restart', function () {
  this.timeout(120_000)
  let server: PostgresServer
  let admin: pg.Client

  before(async () => {
    server = await startPostgresServer()
    const boot = getBroker(server.url, 'boot')
    await boot.size() // migrates the schema
    await boot.close()
    admin = new pg.Client({ connectionString: server.url })
    admin.on('error', () => undefined)
    await admin.connect()
    await admin.query(`CREATE TABLE public.outcomes (queue text, id text, outcome text, at bigint)`)
    await admin.query(`CREATE FUNCTION public.record_outcome() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        INSERT INTO public.outcomes VALUES (NEW.queue, NEW.id, NEW.outcome, worq.now_ms());
        RETURN NEW;
      END $$`)
    await admin.query(`CREATE TRIGGER record_outcome AFTER UPDATE OF state ON worq.tasks
      FOR EACH ROW WHEN (NEW.state = 'done' AND OLD.state <> 'done')
      EXECUTE FUNCTION public.record_outcome()`)
    await admin.end()
  })

  after(async () => {
    await server?.stop()
  })

  /** The recorded outcomes of `queue` (a fresh connection: the server may have restarted). */
  async function recorded(queue: string) {
    const c = new pg.Client({ connectionString: server.url })
    await c.connect()
    try {
      const { rows } = await c.query<{ id: string; outcome: string; at: string }>(
        'SELECT id, outcome, at FROM public.outcomes WHERE queue = $1',
        [queue],
      )
      return rows
    } finally {
      await c.end()
    }
  }

  for (const mode of ['fast', 'immediate'] as const) {
    it(`a server ${mode === 'fast' ? 'restart (-m fast)' : 'crash (-m immediate)'} mid-run, calls made during the outage: every call completes once with its value`, async () => {
      const queue = uniqueQueue(`restart-${mode}`)
      const w = worker(server.url, queue)
      const client = getBroker(server.url, queue)
      try {
        const before = await send(client, 400, 5)
        await w.pool.start()
        const ended = latch()
        w.pool.once('task:end', () => ended.resolve())
        await ended.promise
        // Calls go out as the server goes down and comes back: they wait for it.
        const during = send(client, 100, 1)
        during.catch(() => undefined) // awaited below; a rejection fails the test there
        const downAt = Date.now()
        await server.restart(mode)
        const upAt = Date.now()
        const after = await send(client, 100, 1)
        const all = [...before, ...(await during), ...after]
        let firstDelivered = Infinity
        const values = await Promise.all(
          all.map(async ([d]) => {
            const v = await d.result(60_000)
            const t = Date.now()
            if (t >= upAt) firstDelivered = Math.min(firstDelivered, t)
            return v
          }),
        )
        expect(values).to.deep.equal(all.map(([, id]) => id))

        // One recorded outcome per task, each completed; each ran once, or again only after a
        // lease the pool reported lost.
        const rows = await recorded(queue)
        const byTask = new Map<string, number>()
        for (const r of rows) byTask.set(r.id, (byTask.get(r.id) ?? 0) + 1)
        expect(
          [...byTask.values()].filter(n => n !== 1),
          'tasks recorded twice',
        ).to.deep.equal([])
        expect(byTask.size).to.equal(all.length)
        expect(rows.filter(r => !r.outcome.startsWith('c'))).to.deep.equal([])
        const again = all.filter(([d, id]) => w.runs.get(id) !== 1 && !w.lost.has(d.id))
        expect(again.map(([, id]) => `${id}: ${w.runs.get(id)} runs`)).to.deep.equal([])
        // Whatever the pool met during the outage was a worq error with a code.
        expect(w.errors.filter(e => !/^ERR_WORQ_/.test(e.code ?? ''))).to.deep.equal([])

        const firstRecorded = Math.min(...rows.map(r => Number(r.at)).filter(t => t >= upAt))
        console.log(
          `      ${mode}: ${all.length}/${all.length} completed (400 before, 100 during the outage, 100 after), each recorded once; down ${upAt - downAt} ms; first outcome recorded ${firstRecorded - upAt} ms and delivered ${firstDelivered - upAt} ms after the server was back; ${w.lost.size} leases lost, ${w.errors.length} pool errors`,
        )
        expect(firstRecorded - upAt).to.be.below(3000)
      } finally {
        await w.pool.stop({ timeout: 2000 })
        await w.broker.close()
        await client.close()
      }
    })
  }

  it('an outage longer than connectTimeoutMs: calls fail with BackendUnreachable, and work goes on once the server is back', async () => {
    const queue = uniqueQueue('outage')
    const options = { connectTimeoutMs: 1000 }
    const wb = getBroker(`${server.url}?application_name=worq-worker`, queue, options)
    wb.expose(function echo(x: string) {
      return x
    })
    const pool = new WorkerPool(wb, { concurrency: 2, sweepInterval: SWEEP })
    const errors: Array<Error & { code?: string }> = []
    pool.on('pool:error', err => errors.push(err))
    const client = getBroker(server.url, queue, options)
    try {
      await pool.start()
      const q = client.queue()
      expect(await ((await q.echo('before')) as Deferred<string>).result(10_000)).to.equal('before')
      await server.halt('fast')
      const t0 = Date.now()
      const err = (await q.echo('lost').then(
        () => undefined,
        (e: unknown) => e,
      )) as (Error & { code?: string }) | undefined
      const waited = Date.now() - t0
      expect(err?.code).to.equal('ERR_WORQ_BACKEND_UNREACHABLE')
      expect(err?.message).to.match(/127\.0\.0\.1/)
      expect(waited).to.be.within(900, 4000)
      await server.start()
      const back = (await q.echo('after')) as Deferred<string>
      expect(await back.result(15_000)).to.equal('after')
      expect(errors.length, 'the pool reported the outage').to.be.greaterThan(0)
      expect(errors.filter(e => e.code !== 'ERR_WORQ_BACKEND_UNREACHABLE')).to.deep.equal([])
      expect(await client.size()).to.equal(0)
    } finally {
      await pool.stop({ timeout: 2000 })
      await wb.close()
      await client.close()
    }
  })
})
