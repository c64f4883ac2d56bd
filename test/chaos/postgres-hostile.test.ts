/**
 * Hostile input on the wire, on postgres://: the columns of task rows that a worker or a caller
 * reads back as written (docs/postgres.md, "Schema and migrations": `payload`, `name`, `metadata`,
 * `progress`, `outcome` are text; `deps` and `backoff` json; the numbers are columns of their own
 * type) rewritten by hand, as another program with write access to the schema could, side by side
 * with good tasks that the worker reserves in the same exchanges. Each hostile row must end as a
 * failed task with a message that says why (or, if it is harmless, run without harm); the worker
 * must not report errors or stop; the good tasks must complete; no task may be ended twice (a
 * trigger the test installs records every row that turns `done`). hostile.test.ts does the same
 * to Redis's records.
 */
import { expect } from 'chai'
import fc from 'fast-check'
import pg from 'pg'
import { getBroker, task, TaskFailure, WorkerPool, type Deferred } from '../../lib/index.js'
import {
  CLEAR,
  custom,
  expectCompletedOrClear,
  expectGood,
  interleave,
  outcomesOf,
  payloadMutations,
  polluted,
  settledWithin,
} from '../helpers/hostile.js'
import { postgresUrl } from '../helpers/postgres.js'
import { uniqueQueue } from '../helpers/util.js'

/** A queue on a fresh schema's database with a worker exposing echo and len, and a raw client. */
async function rig(maxPayloadBytes = 1 << 20) {
  const url = await postgresUrl()
  const db = new pg.Client({ connectionString: url })
  await db.connect()
  const queue = uniqueQueue('pgfuzz')
  const broker = getBroker(url, queue, { maxPayloadBytes })
  broker
    .expose(function echo(x: unknown) {
      return x
    })
    .expose(function len(x: string) {
      return x.length
    })
  await broker.size() // the schema exists before the trigger goes on its table
  await db.query(
    `CREATE TABLE IF NOT EXISTS public.hostile_ends (queue text, id text, outcome text)`,
  )
  await db.query(`CREATE OR REPLACE FUNCTION public.hostile_end() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
      INSERT INTO public.hostile_ends VALUES (NEW.queue, NEW.id, NEW.outcome);
      RETURN NEW;
    END $$`)
  await db.query(`CREATE OR REPLACE TRIGGER hostile_end AFTER UPDATE OF state ON worq.tasks
    FOR EACH ROW WHEN (NEW.state = 'done' AND OLD.state <> 'done')
    EXECUTE FUNCTION public.hostile_end()`)
  const pool = new WorkerPool(broker, { concurrency: 8, sweepInterval: 100 })
  const errors: string[] = []
  pool.on('pool:error', e => errors.push(e.message))
  const echo = task(broker.queue().echo, { heartrate: 100 })

  /**
   * Enqueues a call of echo per entry (its id the entry's key) and rewrites the row's `column` to
   * the entry's value, good calls interleaved; returns the good Deferreds. The rows are rewritten
   * before a worker takes them: the pool is not started yet, or the queue is paused.
   */
  async function inject(
    rows: Record<string, string>,
    column: string,
  ): Promise<Array<Deferred<unknown>>> {
    return interleave(
      rows,
      async (id, value) => {
        await task(broker.queue().echo, { id, heartrate: 100 })('placeholder')
        const changed = await db.query(
          `UPDATE worq.tasks SET ${column} = $3 WHERE queue = $1 AND id = $2`,
          [queue, id, value],
        )
        expect(changed.rowCount, `row ${id}`).to.equal(1)
      },
      arg => echo(arg) as Promise<Deferred<unknown>>,
    )
  }

  /** Resolves once no row of `ids` is live; bounded. */
  const settled = (ids: string[], ms?: number) =>
    settledWithin(async () => {
      const { rows } = await db.query<{ id: string }>(
        `SELECT id FROM worq.tasks WHERE queue = $1 AND id = ANY ($2) AND state <> 'done'`,
        [queue, ids],
      )
      return rows.map(row => row.id)
    }, ms)

  /** Ids of this queue ended more than once (the trigger's records). */
  async function endedTwice(): Promise<string[]> {
    const { rows } = await db.query<{ id: string }>(
      `SELECT id FROM public.hostile_ends WHERE queue = $1 GROUP BY id HAVING count(*) > 1`,
      [queue],
    )
    return rows.map(r => r.id)
  }

  return {
    queue,
    broker,
    db,
    pool,
    errors,
    inject,
    settled,
    outcomes: (ids: string[]) => outcomesOf(broker, queue, ids),
    endedTwice,
    async close() {
      await pool.stop({ timeout: 1000 })
      await broker.close()
      await db.query(`DROP TRIGGER IF EXISTS hostile_end ON worq.tasks`)
      await db.end()
    },
  }
}

describe('chaos: hostile input on the wire [postgres]', function () {
  this.timeout(120_000)

  it('malformed, oversized and prototype-walking payloads and names fail their task clearly; the worker and other tasks go on', async () => {
    const r = await rig()
    const deep = '['.repeat(5000) + ']'.repeat(5000)
    const payloads: Record<string, string> = {
      'bad-payload': 'not json at all',
      'empty-payload': '',
      'payload-not-list': '{"json":{"a":1}}',
      'payload-truncated': '{"json":[1,2',
      'unknown-class': `{"json":[{}],"meta":{"values":{"0":[["class","Evil"]]}}}`,
      'unknown-custom': `{"json":[{}],${custom('Evil')}}`,
      'ref-out-of-range': `{"json":[{"r":99}],${custom('worq.ref')}}`,
      'ref-inline-garbage': `{"json":[{"o":"cnot json"}],${custom('worq.ref')}}`,
      'failure-without-fields': `{"json":[{}],${custom('worq.failure')}}`,
      'bigint-garbage': '{"json":["12abc"],"meta":{"values":{"0":["bigint"]}}}',
      'regexp-garbage': '{"json":["/(/"],"meta":{"values":{"0":["regexp"]}}}',
      'meta-path-__proto__':
        '{"json":[{"a":1}],"meta":{"values":{"0.__proto__.polluted":["undefined"]}}}',
      'meta-path-constructor.prototype':
        '{"json":[{"a":1}],"meta":{"values":{"0.constructor.prototype.polluted":["undefined"]}}}',
      'deep-payload': `{"json":[${deep}]}`,
      // 3 MB of argument, over the worker's 1 MB maxPayloadBytes: echo's result is refused.
      oversized: `{"json":["${'x'.repeat(3 << 20)}"]}`,
    }
    const names: Record<string, string> = {}
    for (const name of [
      '__proto__',
      'constructor',
      'prototype',
      'toString',
      'hasOwnProperty',
      'echo.__proto__',
      '__proto__.polluted',
      'no.such.task',
      '',
    ])
      names[`name-${name}`] = name
    // Harmless, however odd: they run, and must not reach Object.prototype.
    const harmless: Record<string, string> = {
      'json-__proto__-key': '{"json":[{"__proto__":{"polluted":"yes"}}]}',
      'json-constructor-key': '{"json":[{"constructor":{"prototype":{"polluted":"yes"}}}]}',
      'invalid-date': '{"json":["not a date"],"meta":{"values":{"0":["Date"]}}}',
    }
    try {
      const good = [
        ...(await r.inject({ ...payloads, ...harmless }, 'payload')),
        ...(await r.inject(names, 'name')),
      ]
      const t0 = Date.now()
      await r.pool.start()
      await expectGood(good)
      const mustFail = [...Object.keys(payloads), ...Object.keys(names)]
      const ids = [...mustFail, ...Object.keys(harmless)]
      await r.settled(ids)
      const got = await r.outcomes(ids)
      const lines = Object.entries(got).map(([id, o]) => `${id} → ${o}`)
      console.log(
        `      ${ids.length} hostile rows tried (good tasks done in ${Date.now() - t0} ms):\n        ${lines.join('\n        ')}`,
      )
      for (const id of mustFail)
        expect(got[id], id).to.match(new RegExp(`^(${CLEAR.join('|')}): .{10,}`))
      for (const name of ['__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty'])
        expect(got[`name-${name}`]).to.match(/^NoSuchTask: .*exposes a task named/)
      expect(got.oversized).to.match(/^PayloadTooLarge/)
      // An echo of an own `__proto__` key is refused as a result (UnserializableResult): an
      // outcome all the same.
      for (const id of Object.keys(harmless))
        expect(got[id], id).to.match(new RegExp(`^(completed|${CLEAR.join('|')})`))
      expect(polluted().polluted).to.equal(undefined)
      expect(r.errors).to.deep.equal([])
      expect(await r.endedTwice(), 'rows ended twice').to.deep.equal([])
    } finally {
      await r.close()
    }
  })

  it('fuzz: random mutations of a real payload never stop the worker', async () => {
    const r = await rig()
    // A real payload, written by the real enqueue.
    const probe = await r.broker.queue().echo({
      when: new Date(0),
      tags: new Set(['a', 'b']),
      m: new Map([[1, { deep: [1n, undefined, /x/g] }]]),
      s: 'text',
    })
    const { rows } = await r.db.query<{ payload: string }>(
      `SELECT payload FROM worq.tasks WHERE queue = $1 AND id = $2`,
      [r.queue, probe!.id],
    )
    await r.broker.purge()
    const body = rows[0]!.payload
    // PostgreSQL's text holds no NUL: a mutation never writes one (the server would refuse it).
    const text = fc.string({ minLength: 1, maxLength: 4 }).map(s => s.replace(/\0/g, ' '))
    const mutation = fc.oneof(
      fc.nat().map(i => (b: string) => b.slice(0, i % b.length)),
      payloadMutations(text),
    )
    const RUNS = Number(process.env.WORQ_FUZZ_RUNS ?? 20)
    const PER = 30
    let tried = 0
    const tally = new Map<string, number>()
    try {
      await r.pool.start()
      await fc.assert(
        fc.asyncProperty(fc.array(mutation, { minLength: PER, maxLength: PER }), async muts => {
          const rows: Record<string, string> = {}
          muts.forEach((m, i) => (rows[`m${tried + i}`] = m(body)))
          tried += muts.length
          // Paused while the rows are rewritten: the running worker takes none of them before.
          await r.broker.pause()
          const good = await r.inject(rows, 'payload')
          await r.broker.resume()
          await expectGood(good)
          const ids = Object.keys(rows)
          await r.settled(ids)
          expectCompletedOrClear(await r.outcomes(ids), rows, tally)
          expect(r.errors).to.deep.equal([])
        }),
        { numRuns: RUNS, endOnFailure: true },
      )
      expect(polluted().polluted).to.equal(undefined)
      expect(await r.endedTwice(), 'rows ended twice').to.deep.equal([])
      console.log(
        `      fuzz: ${tried} mutated payloads tried: ${JSON.stringify(Object.fromEntries(tally))}`,
      )
    } finally {
      await r.close()
    }
  })

  it('unreadable metadata, progress and outcomes: reads and listings say so (BadMessage); a waiter is told, not stopped', async () => {
    const r = await rig()
    const url = await postgresUrl()
    const reader = getBroker(url, r.queue)
    try {
      await r.pool.start()
      const q = r.broker.queue()
      const meta = await task(q.echo, { metadata: { a: 1 } })('m')
      const calls = {
        completed: await q.echo('c'),
        failed: await q.len(5),
        unknown: await q.echo('u'),
      }
      await Promise.all([meta.wait(10_000), ...Object.values(calls).map(d => d.wait(10_000))])
      const set = (id: string, column: string, value: string) =>
        r.db.query(`UPDATE worq.tasks SET ${column} = $3 WHERE queue = $1 AND id = $2`, [
          r.queue,
          id,
          value,
        ])
      await set(meta.id, 'metadata', '{not json')
      await set(meta.id, 'progress', '{"json":[1,')
      await set(calls.completed.id, 'outcome', 'cnot json')
      await set(calls.failed.id, 'outcome', 'f{"json":')
      await set(calls.unknown.id, 'outcome', 'zzz')

      const info = await reader.task(meta.id)
      expect(info?.metadata).to.deep.equal({})
      expect(info?.progress).to.equal(undefined)
      const bad = /^the task's outcome cannot be read: .+/
      for (const [kind, d] of Object.entries(calls)) {
        const i = await reader.task(d.id)
        expect(i?.status, kind).to.equal(kind === 'completed' ? 'completed' : 'failed')
        expect(i?.value, kind).to.equal(undefined)
        expect(i?.error, kind).to.include({ name: 'BadMessage', code: 'ERR_WORQ_BAD_MESSAGE' })
        expect(i?.error?.message, kind).to.match(bad)
      }
      // A waiter whose outcome is read from the row: an outcome over what a notification carries
      // (7 800 bytes) is announced by its kind alone. The row is rewritten as it ends.
      await r.db.query(`CREATE OR REPLACE FUNCTION public.hostile_garble() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
          NEW.outcome := 'c{"json":' || repeat('x', 9000);
          RETURN NEW;
        END $$`)
      await r.db.query(`CREATE OR REPLACE TRIGGER hostile_garble BEFORE UPDATE OF state
        ON worq.tasks FOR EACH ROW WHEN (NEW.state = 'done' AND NEW.id LIKE 'garble-%')
        EXECUTE FUNCTION public.hostile_garble()`)
      try {
        const big = await task(q.echo, { id: `garble-${r.queue}` })('y'.repeat(9000))
        const err = await big.result(10_000).then(
          () => undefined,
          (e: unknown) => e,
        )
        expect(err).to.be.instanceOf(TaskFailure)
        expect((err as TaskFailure).remote).to.include({
          name: 'BadMessage',
          code: 'ERR_WORQ_BAD_MESSAGE',
        })
        expect((err as TaskFailure).taskId).to.equal(big.id)
        expect(await big.status()).to.equal('completed')
      } finally {
        await r.db.query(`DROP TRIGGER IF EXISTS hostile_garble ON worq.tasks`)
      }
      const listed = await reader.tasks({ limit: 10 })
      expect(listed.map(t => t.id)).to.include.members([
        meta.id,
        ...Object.values(calls).map(d => d.id),
      ])
      expect(r.errors).to.deep.equal([])
    } finally {
      await reader.close()
      await r.close()
    }
  })

  it('inbox rows the fold cannot read go; events and metrics go on (schema version 23)', async () => {
    const r = await rig()
    try {
      await r.pool.start()
      const q = r.broker.queue()
      expect(await (await q.echo('before')).result(10_000)).to.equal('before')
      const bodies = [
        '5',
        '"text"',
        '[1,2]',
        '{"es":5}',
        '{"es":[1,[2]]}',
        '{"en":"x"}',
        '{"t":"not a time","k":"c"}',
        '{"ms":[{"k":"c","t":"bad"}]}',
        '{"ms":7}',
        '{"t":1,"k":"c","run":"slow"}',
      ]
      for (const body of bodies)
        await r.db.query(`INSERT INTO worq.inbox (queue, body) VALUES ($1, $2::json)`, [
          r.queue,
          body,
        ])
      const after = await Promise.all(Array.from({ length: 5 }, (_, i) => q.echo(i)))
      await Promise.all(after.map(d => d.result(10_000)))
      // A reader folds first: it must not fail, and it counts the calls around the bad rows.
      const metrics = await r.broker.metrics()
      expect(metrics.totals.completed).to.equal(6)
      const { rows } = await r.db.query<{ n: string }>(
        `SELECT count(*) AS n FROM worq.inbox WHERE queue = $1`,
        [r.queue],
      )
      expect(Number(rows[0]!.n), 'inbox rows left').to.equal(0)
      const types: string[] = []
      const stream = r.broker.events({ since: '0' })
      try {
        for await (const e of stream) {
          types.push(e.type)
          if (types.filter(t => t === 'completed').length === 6) break
        }
      } finally {
        await stream.close()
      }
      expect(types.filter(t => t === 'enqueued')).to.have.length(6)
      expect(r.errors).to.deep.equal([])
    } finally {
      await r.close()
    }
  })

  it('a schedule definition that does not read as one is left out; the others and the pool go on', async () => {
    const r = await rig()
    try {
      await r.pool.start()
      const q = r.broker.queue()
      await r.broker.schedule('bad', { every: 60_000 }, q.echo, 1)
      await r.broker.schedule('good', { every: 60_000 }, q.echo, 2)
      await r.db.query(
        `UPDATE worq.schedules SET body = '{"x":1}'::jsonb WHERE queue = $1 AND id = 'bad'`,
        [r.queue],
      )
      expect((await r.broker.schedules()).map(s => s.id)).to.deep.equal(['good'])
      // A schedule stored after it reloads every pool's schedules (a notification).
      await r.broker.schedule('later', { every: 60_000 }, q.echo, 3)
      expect((await r.broker.schedules()).map(s => s.id)).to.deep.equal(['good', 'later'])
      expect(await (await q.echo('after')).result(10_000)).to.equal('after')
      expect(await r.broker.unschedule('bad'), 'unschedule of the unreadable one').to.equal(true)
      expect(r.errors).to.deep.equal([])
    } finally {
      await r.close()
    }
  })
})
