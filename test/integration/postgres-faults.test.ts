import { expect } from 'chai'
import { spawn } from 'node:child_process'
import net from 'node:net'
import pg from 'pg'
import { getBroker, task, TaskSpace, WorkerPool, type Deferred } from '../../lib/index.js'
import { freshDatabase, postgresUrl } from '../helpers/postgres.js'
import { CLI_TS } from '../helpers/cli.js'
import { latch, uniqueQueue, until } from '../helpers/util.js'
import { tcpForwarder } from '../helpers/tcp-forwarder.js'
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

describe('postgres: URLs, faults and migrations', () => {
  let url: string
  before(async () => {
    url = await postgresUrl()
  })

  it('a bad URL is a BadUrl naming the bad part', () => {
    const bad: Array<[string, RegExp]> = [
      ['postgres://h:99999/db', /port "99999"/],
      ['postgres://h/db?schema=Bad-Name', /schema "Bad-Name"/],
      ['postgres://h/db?sslmode=sometimes', /sslmode "sometimes"/],
      ['postgres://h/db?pool=0', /pool size "0"/],
      ['postgres://h/db?prepare=maybe', /prepare "maybe"/],
      ['postgres://h/db?colour=red', /parameter "colour"/],
      ['postgresql://h/a/b', /database "a\/b"/],
    ]
    for (const [u, re] of bad)
      expect(() => getBroker(u, 'q'))
        .to.throw(re)
        .with.property('code', 'ERR_WORQ_BAD_URL')
  })

  it('prepare=false (for a pooler that cannot keep prepared statements) runs calls all the same', async () => {
    const queue = uniqueQueue('unprepared')
    const broker = getBroker(`${url}${url.includes('?') ? '&' : '?'}prepare=false`, queue)
    const pool = new WorkerPool(broker, { concurrency: 4 })
    try {
      broker.expose(new TaskSpace('', { twice: (x: number) => 2 * x }))
      await pool.start()
      const q = broker.queue()
      const calls = await Promise.all([1, 2, 3, 4, 5].map(x => q.twice(x)))
      expect(await Promise.all(calls.map(d => d.result(10_000)))).to.deep.equal([2, 4, 6, 8, 10])
    } finally {
      await pool.stop()
      await broker.close()
    }
  })

  it('an unreachable server fails the first call within seconds with BackendUnreachable', async () => {
    const broker = getBroker('postgres://postgres@127.0.0.1:1/none', 'q', {
      connectTimeoutMs: 1_000,
    })
    try {
      const t0 = Date.now()
      const err = await errorOf(broker.size())
      expect(err?.code).to.equal('ERR_WORQ_BACKEND_UNREACHABLE')
      expect(err?.message).to.match(/127\.0\.0\.1:1/)
      expect(Date.now() - t0).to.be.below(3_000)
      // A call waits for the outcomes' LISTEN connection first: the same error.
      const call = await errorOf(broker.queue().f())
      expect(call?.code).to.equal('ERR_WORQ_BACKEND_UNREACHABLE')
    } finally {
      await broker.close()
    }
  })

  it('a server that accepts connections and drops them fails the first call with BackendUnreachable', async () => {
    // As a server shutting down or starting up, or a proxy with nothing behind it, does.
    const server = net.createServer(socket => socket.destroy())
    await new Promise<void>(r => server.listen(0, '127.0.0.1', r))
    const { port } = server.address() as net.AddressInfo
    const broker = getBroker(`postgres://postgres@127.0.0.1:${port}/none`, 'q', {
      connectTimeoutMs: 1_000,
    })
    try {
      const call = await errorOf(broker.queue().f())
      expect(call?.code).to.equal('ERR_WORQ_BACKEND_UNREACHABLE')
      expect(call?.message).to.match(new RegExp(`127\\.0\\.0\\.1:${port}`))
      const size = await errorOf(broker.size())
      expect(size?.code).to.equal('ERR_WORQ_BACKEND_UNREACHABLE')
    } finally {
      await broker.close()
      server.close()
    }
  })

  it('connections dropped mid-run (pg_terminate_backend) lose no task', async () => {
    const queue = uniqueQueue('drop')
    const broker = getBroker(url, queue)
    broker.expose(
      new TaskSpace('s', {
        async slow(i: number) {
          await new Promise(r => setTimeout(r, 20))
          return i
        },
      }),
    )
    const pool = new WorkerPool(broker, { concurrency: 8 })
    pool.on('pool:error', () => undefined)
    await pool.start()
    const admin = new pg.Client({ connectionString: url })
    await admin.connect()
    try {
      const q = broker.queue()
      const calls: Deferred<number>[] = []
      for (let i = 0; i < 200; i++) {
        calls.push((await q.s.slow(i)) as Deferred<number>)
        if (i % 50 === 25)
          await admin.query(
            `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
             WHERE datname = current_database() AND pid <> pg_backend_pid() AND application_name = 'worq'`,
          )
      }
      const values = await Promise.all(calls.map(d => d.result(30_000)))
      expect(values).to.deep.equal(Array.from({ length: 200 }, (_, i) => i))
    } finally {
      await admin.end()
      await pool.stop({ timeout: 5_000 })
      await broker.close()
    }
  })

  it('an enqueue sent again after its reply was lost (a server crash) answers ok for its own tasks, and does not run a finished one again', async () => {
    const queue = uniqueQueue('resend')
    const broker = getBroker(url, queue)
    broker.expose(function echo(x: string) {
      return x
    })
    await broker.size() // migrates
    const db = new pg.Client({ connectionString: url })
    await db.connect()
    try {
      const d = (await broker.queue().echo('first')) as Deferred<string>
      const [stored] = (
        await db.query('SELECT enqueue_tag FROM worq.tasks WHERE queue = $1 AND id = $2', [
          queue,
          d.id,
        ])
      ).rows as Array<{ enqueue_tag: string }>
      const row = (
        await db.query(
          `SELECT json_build_array(json_build_object('id', id, 'name', name, 'payload', payload,
             'deps', deps, 'onError', on_error, 'ignoreResult', ignore_result, 'resultTimeout',
             result_timeout, 'heartrate', heartrate, 'attempts', attempts, 'backoff', backoff,
             'runAt', run_at, 'timeout', timeout, 'priority', priority, 'metadata', metadata,
             'trace', trace)) AS t FROM worq.tasks WHERE queue = $1 AND id = $2`,
          [queue, d.id],
        )
      ).rows[0] as { t: unknown }
      const resend = async (tag: string) =>
        (
          await db.query('SELECT worq.enqueue($1, $2::jsonb, NULL, $3) AS v', [
            queue,
            JSON.stringify(row.t),
            tag,
          ])
        ).rows[0].v as string[]
      // The same call sent again: its own task. Another call with that id: a duplicate.
      expect(await resend(stored!.enqueue_tag)).to.deep.equal(['ok'])
      expect(await resend('another call')).to.deep.equal(['duplicate'])
      const pool = new WorkerPool(broker, { concurrency: 1 })
      await pool.start()
      try {
        expect(await d.result(10_000)).to.equal('first')
        // Sent again after the task ended: still its own task, not run a second time.
        expect(await resend(stored!.enqueue_tag)).to.deep.equal(['ok'])
        expect(await broker.size()).to.equal(0)
        expect(await d.status()).to.equal('completed')
      } finally {
        await pool.stop({ timeout: 5_000 })
      }
    } finally {
      await db.end()
      await broker.close()
    }
  })

  it("two calls with one id in one batch: the second is a DuplicateTask (the batch's tag must not pass it as its own)", async () => {
    const queue = uniqueQueue('dup-batch')
    const broker = getBroker(url, queue)
    broker.expose(function echo(x: string) {
      return x
    })
    try {
      const f = task(broker.queue().echo, { id: 'same' })
      const [a, b] = await Promise.allSettled([f('a'), f('b')])
      expect(a.status).to.equal('fulfilled')
      expect(b.status).to.equal('rejected')
      expect((b as PromiseRejectedResult).reason).to.have.property(
        'code',
        'ERR_WORQ_DUPLICATE_TASK',
      )
      expect(await broker.size()).to.equal(1)
    } finally {
      await broker.purge()
      await broker.close()
    }
  })

  it("an outcome recorded while the caller's LISTEN connection was cut reaches its Deferred, though no one awaited it before its result expired (found by the soak with a server crash)", async () => {
    const queue = uniqueQueue('missed')
    const cut = await tcpForwarder(Number(new URL(url).port || 5432))
    const through = new URL(url)
    through.port = String(cut.port)
    // The caller through the forwarder, the worker straight to the server.
    const caller = getBroker(through.toString(), queue)
    const worker = getBroker(`${url}${url.includes('?') ? '&' : '?'}application_name=worq-w`, queue)
    const gate = latch()
    const started = latch()
    worker.expose(async function gated(x: string) {
      started.resolve()
      await gate.promise
      return x
    })
    const pool = new WorkerPool(worker, { concurrency: 1 })
    const db = new pg.Client({ connectionString: url })
    await db.connect()
    try {
      await pool.start()
      const d = (await task(caller.queue().gated, { resultTimeout: 1_000 })(
        'x',
      )) as Deferred<string>
      await started.promise
      const { hub } = await caller.backend()
      const epoch = hub.epoch
      await cut.cut()
      gate.resolve()
      const state = async () =>
        (
          await db.query(
            'SELECT state, expires_at <= worq.now_ms() AS gone FROM worq.tasks WHERE queue = $1 AND id = $2',
            [queue, d.id],
          )
        ).rows[0] as { state: string; gone: boolean }
      await until(async () => (await state()).state === 'done', 10_000, 'the outcome')
      await cut.restore()
      await until(() => hub.epoch > epoch, 10_000, 'the LISTEN connection to come back')
      // Only now is the Deferred awaited: its outcome's own notification went to no one.
      await until(async () => (await state()).gone, 10_000, 'the result to expire')
      expect(await d.result(1_000)).to.equal('x')
    } finally {
      await db.end()
      await pool.stop({ timeout: 5_000 })
      await worker.close()
      await caller.close()
      await cut.close()
    }
  })

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
