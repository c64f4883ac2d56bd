/**
 * PostgreSQL schema migrations: concurrent `worq migrate` runs, upgrades in place from version 1 with
 * tasks and events kept, and what `worq migrate` refuses.
 */
import { expect } from 'chai'
import { spawn } from 'node:child_process'
import pg from 'pg'
import { getBroker, TaskSpace, WorkerPool } from '../../lib/index.js'
import { freshDatabase } from '../helpers/postgres.js'
import { CLI_TS } from '../helpers/cli.js'
import { uniqueQueue, until } from '../helpers/util.js'
import { SCHEMA_VERSION, schemaSql } from '../../lib/backends/postgres/migrate.js'
import { MAX_DURATION_MS } from '../../lib/backends/backend.js'

/** Every schema version's row in `migrations`, 1 to the current one. */
const ALL_VERSIONS = Array.from({ length: SCHEMA_VERSION }, (_, i) => ({ version: i + 1 }))

function errorOf(p: Promise<unknown>): Promise<{ code?: string; message: string } | undefined> {
  return p.then(
    () => undefined,
    (e: unknown) => e as { code?: string; message: string },
  )
}

/** A task as the enqueue function of schema version 1 takes it (lib/backends/records.ts NewTask). */
function oldTask(arg: string, id = 'old-1') {
  return {
    id,
    name: 'echo',
    payload: JSON.stringify({ json: [arg] }),
    deps: [],
    onError: 'fail',
    ignoreResult: false,
    resultTimeout: 3_600_000,
    heartrate: 10_000,
    attempts: 1,
    backoff: { type: 'fixed', delay: 0, jitter: 0, maxDelay: 0 },
    runAt: 0,
    timeout: 0,
    priority: 0,
    metadata: '',
    trace: '',
  }
}

/** Runs `worq migrate <url>`; resolves with its exit code and output. */
function migrateCli(url: string): Promise<{ code: number | null; out: string }> {
  return new Promise(resolve => {
    const p = spawn(process.execPath, ['--import', 'tsx', CLI_TS, 'migrate', url], {
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let out = ''
    p.stdout.on('data', (d: Buffer) => (out += String(d)))
    p.stderr.on('data', (d: Buffer) => (out += String(d)))
    p.on('exit', code => resolve({ code, out }))
  })
}

describe('postgres: migrations', () => {
  it(`several processes migrating one database at once: one schema, versions 1 to ${SCHEMA_VERSION}`, async () => {
    const fresh = await freshDatabase()
    const runs = await Promise.all(Array.from({ length: 4 }, () => migrateCli(fresh)))
    for (const r of runs) expect(r.code, r.out).to.equal(0)
    expect(
      runs.filter(r => r.out.includes(`migrated from version 0 to ${SCHEMA_VERSION}`)),
    ).to.have.length(1)
    const c = new pg.Client({ connectionString: fresh })
    await c.connect()
    try {
      const { rows } = await c.query('SELECT version FROM worq.migrations ORDER BY version')
      expect(rows).to.deep.equal(ALL_VERSIONS)
      // A schema newer than this code is refused with a clear error.
      await c.query('INSERT INTO worq.migrations (version) VALUES (99)')
      const broker = getBroker(fresh, 'q')
      try {
        const err = await errorOf(broker.size())
        expect(err?.code).to.equal('ERR_WORQ_SCHEMA_TOO_NEW')
      } finally {
        await broker.close()
      }
    } finally {
      await c.end()
    }
  })

  it(`a database of schema version 1 is migrated to version ${SCHEMA_VERSION} in place, and its tasks and events go on`, async () => {
    const fresh = await freshDatabase()
    const c = new pg.Client({ connectionString: fresh })
    await c.connect()
    const queue = uniqueQueue('v1')
    try {
      // Version 1 as a build of that version left it, with a task enqueued and not yet run.
      await c.query('CREATE SCHEMA worq')
      await c.query(
        'CREATE TABLE worq.migrations (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())',
      )
      for (const file of ['001_tables', '002_tasks', '003_work', '004_shaping', '005_observe'])
        await c.query(schemaSql(file, 'worq'))
      await c.query('INSERT INTO worq.migrations (version) VALUES (1)')
      await c.query(`SELECT worq.enqueue($1, $2::jsonb, NULL, 'v1') AS v`, [
        queue,
        JSON.stringify([oldTask('before')]),
      ])
      // Folded by version 1's flush: one events row per event.
      await c.query('SELECT 1 FROM worq.settle($1)', [queue])
      const v1Events = await c.query('SELECT n, body FROM worq.events WHERE queue = $1', [queue])
      expect(v1Events.rows).to.have.length(1)
      expect(v1Events.rows[0].body).to.include({ type: 'enqueued', id: 'old-1' })
      // A second task whose `enqueued` event is still in the inbox (jsonb until version 9) when
      // the database is migrated: the event is folded after it, numbered 2.
      await c.query(`SELECT worq.enqueue($1, $2::jsonb, NULL, 'v1b') AS v`, [
        queue,
        JSON.stringify([oldTask('unfolded', 'old-2')]),
      ])
      // A task of two Deferred arguments, one of them ended under version 1 (its slot written
      // into the task's array), the other after the upgrade (its slot a row of arg_slots until
      // the task is ready, version 10): both reach the run.
      await c.query(`SELECT worq.enqueue($1, $2::jsonb, NULL, 'v1c') AS v`, [
        queue,
        JSON.stringify([
          oldTask('a', 'arg-a'),
          oldTask('b', 'arg-b'),
          {
            ...oldTask('', 'joined'),
            name: 'pair',
            payload: JSON.stringify({
              json: [{ r: 0 }, { r: 1 }],
              meta: { values: { 0: [['custom', 'worq.ref']], 1: [['custom', 'worq.ref']] }, v: 1 },
            }),
            deps: [
              { queue, id: 'arg-a' },
              { queue, id: 'arg-b' },
            ],
          },
        ]),
      ])
      await c.query(
        `SELECT worq.finish($1, 'arg-a', 'c{"json":"a"}', worq.now_ms(), false, NULL)`,
        [queue],
      )
      const joined = await c.query(
        `SELECT state, missing, slots FROM worq.tasks WHERE queue = $1 AND id = 'joined'`,
        [queue],
      )
      expect(joined.rows[0]).to.deep.equal({
        state: 'pending',
        missing: 1,
        slots: ['c{"json":"a"}', null],
      })
      // A schedule as version 1 stored it: its body has no `gen` (version 18), and it still fires.
      const v1Due = Date.now() + 3_600_000
      await c.query(`INSERT INTO worq.schedules (queue, id, body) VALUES ($1, 'v1s', $2::jsonb)`, [
        queue,
        JSON.stringify({
          id: 'v1s',
          name: 'echo',
          when: { every: 3_600_000 },
          task: oldTask('scheduled'),
          startAt: v1Due,
          catchUp: true,
          next: v1Due,
          runs: 0,
        }),
      ])
      const exchangeBody = async () =>
        (await c.query(`SELECT prosrc FROM pg_proc WHERE proname = 'exchange'`)).rows[0].prosrc
      expect(await exchangeBody()).to.include('worq.lock(q)')
      const endBody = async () =>
        (await c.query(`SELECT prosrc FROM pg_proc WHERE proname = 'end_plain'`)).rows[0].prosrc
      expect(await endBody()).to.not.include('ctid')

      const broker = getBroker(fresh, queue)
      const pool = new WorkerPool(broker, { concurrency: 2 })
      try {
        broker.expose(
          new TaskSpace('', { echo: (x: string) => x, pair: (a: string, b: string) => a + b }),
        )
        const after = await broker.queue().echo('after')
        await pool.start()
        expect(await after.result(10_000)).to.equal('after')
        await until(async () => (await broker.size()) === 0, 10_000, 'the version 1 task to run')
        // The size leaves out running tasks: the last of them may still run.
        await until(
          async () => (await broker.task('joined'))?.status === 'completed',
          10_000,
          'the joined task to end',
        )
        const { rows } = await c.query('SELECT version FROM worq.migrations ORDER BY version')
        expect(rows).to.deep.equal(ALL_VERSIONS)
        expect(await exchangeBody()).to.include('worq.hold(q)')
        // Version 6: an exchange asks for a fold instead of folding.
        expect(await exchangeBody()).to.not.include('flush')
        expect(await endBody()).to.include('t.ctid = f.tid')
        // Version 3 caps a retry's backoff (an exponential one overflowed a bigint).
        const capped = await c.query(
          `SELECT worq.backoff_delay('{"type":"exponential","delay":1000,"jitter":0,"maxDelay":0}', 5000) AS ms`,
        )
        expect(Number(capped.rows[0].ms)).to.equal(MAX_DURATION_MS)
        const old = await broker.task('old-1')
        expect(old?.status).to.equal('completed')
        expect(old?.value).to.equal('before')
        expect((await broker.task('old-2'))?.value).to.equal('unfolded')
        expect((await broker.task('joined'))?.value).to.equal('ab')
        expect((await c.query('SELECT count(*)::int AS n FROM worq.arg_slots')).rows[0].n).to.equal(
          0,
        )
        // Since version 4 events are kept a set per row (version 5: a fold's events together); the
        // event version 1 wrote is read as before, numbered on by those written since.
        const sets = await c.query(
          'SELECT n, count, jsonb_array_length(body) AS len FROM worq.events WHERE queue = $1 ORDER BY n',
          [queue],
        )
        expect(sets.rows[0]).to.deep.include({ n: '1', count: 1, len: 1 })
        for (const r of sets.rows) expect(r.len).to.equal(r.count)
        const events = broker.events({ since: '0' })
        const seen: Array<{ type: string; id: string; eventId: string }> = []
        events.on('*', e => seen.push(e as (typeof seen)[number]))
        try {
          await until(
            () => ['old-1', 'old-2'].every(id => seen.filter(e => e.id === id).length >= 3),
            10_000,
            'the version 1 tasks’ events',
          )
        } finally {
          await events.close()
        }
        expect(seen[0]).to.include({ type: 'enqueued', id: 'old-1', eventId: '1' })
        expect(seen[1]).to.include({ type: 'enqueued', id: 'old-2', eventId: '2' })
        expect(seen.map(e => Number(e.eventId))).to.deep.equal(seen.map((_, i) => i + 1))
        // Version 9 made the inbox's body json: its compression is set again as the events' is
        // (lz4 where the server has it; a new type reset it to the default).
        const compression = await c.query(
          `SELECT attrelid::regclass::text AS t, attcompression AS c FROM pg_attribute
           WHERE attrelid IN ('worq.inbox'::regclass, 'worq.events'::regclass) AND attname = 'body'
           ORDER BY 1`,
        )
        expect(compression.rows.map(r => r.t)).to.deep.equal(['worq.events', 'worq.inbox'])
        expect(compression.rows[1].c).to.equal(compression.rows[0].c)
        // Version 6 keeps the numbering in the queue's folds row, carried over from queues.
        const fold = await c.query('SELECT event_seq FROM worq.folds WHERE queue = $1', [queue])
        expect(Number(fold.rows[0].event_seq)).to.be.at.least(seen.length)
        // Version 18: fire_schedule takes the `gen` read (its version 1 form is gone); the schedule
        // version 1 stored has none, and fires (here its due time is skipped) for a reader of none.
        const fires = await c.query(`SELECT pronargs FROM pg_proc WHERE proname = 'fire_schedule'`)
        expect(fires.rows).to.deep.equal([{ pronargs: 7 }])
        const { backend: b } = await broker.backend()
        expect(await b.fireSchedule(queue, 'v1s', 'a-gen', v1Due, null, null)).to.equal(false)
        expect(await b.fireSchedule(queue, 'v1s', undefined, v1Due, null, null)).to.equal(true)
        const [v1s] = await broker.schedules()
        expect(v1s).to.include({ id: 'v1s', runs: 0 })
        expect(v1s!.next).to.equal(undefined) // its due time skipped, its next set to none (ended)
      } finally {
        await pool.stop()
        await broker.close()
      }
    } finally {
      await c.end()
    }
  })

  it('worq migrate refuses a URL that is not postgres://', async () => {
    const r = await migrateCli('redis://127.0.0.1:6379/0')
    expect(r.code).to.equal(2)
    expect(r.out).to.match(/postgres:\/\//)
  })
})
