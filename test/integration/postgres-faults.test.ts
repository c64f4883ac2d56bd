/**
 * PostgreSQL URLs and faults: bad URLs, unreachable and dropping servers, connections cut mid-run,
 * enqueues resent after a lost reply, outcomes recorded while the LISTEN connection was down.
 */
import { expect } from 'chai'
import net from 'node:net'
import pg from 'pg'
import { getBroker, task, TaskSpace, WorkerPool, type Deferred } from '../../lib/index.js'
import { postgresUrl } from '../helpers/postgres.js'
import { latch, uniqueQueue, until } from '../helpers/util.js'
import { tcpForwarder } from '../helpers/tcp-forwarder.js'

function errorOf(p: Promise<unknown>): Promise<{ code?: string; message: string } | undefined> {
  return p.then(
    () => undefined,
    (e: unknown) => e as { code?: string; message: string },
  )
}

describe('postgres: URLs and faults', () => {
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
})
