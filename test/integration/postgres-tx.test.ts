import { expect } from 'chai'
import v8 from 'node:v8'
import vm from 'node:vm'
import pg from 'pg'
import { getBroker, task, TaskSpace, type Deferred } from '../../lib/index.js'
import { postgresUrl } from '../helpers/postgres.js'
import { uniqueQueue, withWorker } from '../helpers/util.js'

describe('postgres: enqueue in the caller’s transaction', () => {
  let url: string
  let client: pg.Client
  before(async () => {
    url = await postgresUrl()
    client = new pg.Client({ connectionString: url.replace(/\?.*$/, '') })
    await client.connect()
  })
  after(() => client.end())

  function worker(ran: string[]) {
    const mail = new TaskSpace('mail', {
      send(to: string) {
        ran.push(to)
        return `sent ${to}`
      },
    })
    return withWorker(url, b => b.expose(mail))
  }

  it('rolled back: no task, nothing runs, nothing is known of it', async () => {
    const ran: string[] = []
    const w = await worker(ran)
    try {
      const q = w.broker.queue()
      await client.query('BEGIN')
      const d = (await task(q.mail.send, { tx: client })('ada')) as Deferred<string>
      await client.query('ROLLBACK')
      await new Promise(r => setTimeout(r, 300))
      expect(ran).to.deep.equal([])
      expect(await w.broker.task(d.id)).to.equal(undefined)
      expect(await w.broker.size()).to.equal(0)
    } finally {
      await w.close()
    }
  })

  it('rolled back: its Deferred is not kept once the caller lets it go (no outcome will ever come)', async () => {
    v8.setFlagsFromString('--expose-gc')
    const gc = vm.runInNewContext('gc') as () => void
    const broker = getBroker(url, uniqueQueue('tx-gone'))
    try {
      const q = broker.queue()
      await broker.size()
      const refs: Array<WeakRef<object>> = []
      for (let i = 0; i < 20; i++) {
        await client.query('BEGIN')
        refs.push(new WeakRef((await task(q.mail.send, { tx: client })(`r${i}`))!))
        await client.query('ROLLBACK')
      }
      // A WeakRef's target lives until the job that made it ends; then collections may take it.
      for (let round = 0; round < 5 && refs.some(r => r.deref()); round++) {
        await new Promise(r => setImmediate(r))
        gc()
      }
      expect(refs.filter(r => r.deref() !== undefined)).to.have.length(0)
    } finally {
      await broker.close()
    }
  })

  it('committed: runs; no worker sees it before the commit', async () => {
    const ran: string[] = []
    const w = await worker(ran)
    try {
      const q = w.broker.queue()
      await client.query('BEGIN')
      const d = (await task(q.mail.send, { tx: client })('bob')) as Deferred<string>
      await new Promise(r => setTimeout(r, 400))
      expect(ran, 'ran before the commit').to.deep.equal([])
      expect(await w.broker.task(d.id), 'visible before the commit').to.equal(undefined)
      await client.query('COMMIT')
      expect(await d.result(5_000)).to.equal('sent bob')
      expect(ran).to.deep.equal(['bob'])
    } finally {
      await w.close()
    }
  })

  it('before the commit its Deferred is pending, not expired: status() and a gap in delivery leave it to settle after the commit', async () => {
    const ran: string[] = []
    const w = await worker(ran)
    try {
      const q = w.broker.queue()
      await client.query('BEGIN')
      const d = (await task(q.mail.send, { tx: client })('cy')) as Deferred<string>
      // Read on the broker's own connections, which cannot see the uncommitted row.
      expect(await d.status()).to.equal('pending')
      expect(d.settled).to.equal(false)
      // A wait under way when the listening connection drops: the hub re-reads the status of
      // every waiter after the gap, and this one stays unsettled.
      const waited = d.result(10_000)
      const admin = new pg.Client({ connectionString: url.replace(/\?.*$/, '') })
      await admin.connect()
      try {
        const { rows } = await admin.query<{ n: number }>(
          `SELECT count(pg_terminate_backend(pid))::int AS n FROM pg_stat_activity
            WHERE datname = current_database() AND query LIKE 'LISTEN %' AND pid <> pg_backend_pid()`,
        )
        expect(rows[0]!.n).to.be.greaterThan(0)
      } finally {
        await admin.end()
      }
      // The re-read happens on the reconnected listener; a status read sees the same: pending.
      expect(await d.status()).to.equal('pending')
      expect(d.settled).to.equal(false)
      await client.query('COMMIT')
      expect(await waited).to.equal('sent cy')
      expect(await d.status()).to.equal('completed')
    } finally {
      await w.close()
    }
  })

  it('broker.transaction(client): every call joins the transaction', async () => {
    const ran: string[] = []
    const w = await worker(ran)
    try {
      await client.query('BEGIN')
      const tq = w.broker.transaction(client)
      const a = (await tq.mail.send('a')) as Deferred<string>
      const b = (await tq.mail.send('b')) as Deferred<string>
      await client.query('COMMIT')
      expect(await a.result(5_000)).to.equal('sent a')
      expect(await b.result(5_000)).to.equal('sent b')
    } finally {
      await w.close()
    }
  })

  it('calls made at once on one client never overlap on it: they go together, in order, and all join the transaction', async () => {
    // node-postgres deprecates (and prints a warning about) a query sent while another of the
    // same client runs; a client wrapped to count its statements and catch any overlap.
    const ran: string[] = []
    const w = await worker(ran)
    const otherBroker = getBroker(url, uniqueQueue('tx-other'))
    const warnings: string[] = []
    const onWarning = (e: Error) => warnings.push(e.message)
    process.on('warning', onWarning)
    let running = 0
    let overlapped = 0
    let statements = 0
    const tx = {
      async query(text: string, values?: unknown[]) {
        if (running > 0) overlapped++
        running++
        statements++
        try {
          return await client.query(text, values)
        } finally {
          running--
        }
      },
    }
    try {
      const q = w.broker.queue()
      const other = otherBroker.queue()
      await client.query('BEGIN')
      const names = Array.from({ length: 30 }, (_, i) => `n${i}`)
      const calls = names.map(n => task(q.mail.send, { tx })(n))
      // Another queue in the same tick goes in a statement of its own, after these.
      calls.push(task(other.mail.send, { tx })('elsewhere'))
      const ds = (await Promise.all(calls)) as Array<Deferred<string>>
      expect(overlapped).to.equal(0)
      // The first call went at once; the 29 made while it ran went together; then the other queue.
      expect(statements).to.equal(3)
      expect(await w.broker.size(), 'visible before the commit').to.equal(0)
      await client.query('COMMIT')
      const results = await Promise.all(ds.slice(0, 30).map(d => d.result(5_000)))
      expect(results).to.deep.equal(names.map(n => `sent ${n}`))
      expect((await otherBroker.task(ds[30]!.id))?.status).to.equal('enqueued')
      await new Promise(r => setImmediate(r))
      expect(warnings.filter(m => /already executing a query/.test(m))).to.deep.equal([])
    } finally {
      process.off('warning', onWarning)
      await otherBroker.purge()
      await otherBroker.close()
      await w.close()
    }
  })

  it('a duplicate id in the transaction is a DuplicateTask', async () => {
    const broker = getBroker(url, 'tx-dup')
    try {
      const q = broker.queue()
      await client.query('BEGIN')
      await task(q.mail.send, { tx: client, id: 'once' })('x')
      const err = await task(q.mail.send, { tx: client, id: 'once' })('x').then(
        () => undefined,
        (e: unknown) => e as { code?: string },
      )
      // Two calls with one id made at once go in one statement: the second is the duplicate.
      const both = await Promise.allSettled([
        task(q.mail.send, { tx: client, id: 'twice' })('x'),
        task(q.mail.send, { tx: client, id: 'twice' })('y'),
        task(q.mail.send, { tx: client, id: 'twice' })('z'),
      ])
      await client.query('ROLLBACK')
      expect(err?.code).to.equal('ERR_WORQ_DUPLICATE_TASK')
      expect(both.map(r => r.status)).to.deep.equal(['fulfilled', 'rejected', 'rejected'])
      for (const r of both.slice(1))
        expect((r as PromiseRejectedResult).reason?.code).to.equal('ERR_WORQ_DUPLICATE_TASK')
    } finally {
      await broker.close()
    }
  })

  it('tx on memory:// fails with a code; a tx without query is a TypeError', async () => {
    const broker = getBroker('memory://tx', 'q')
    try {
      const q = broker.queue()
      const err = await task(q.mail.send, { tx: client })('x').then(
        () => undefined,
        (e: unknown) => e as { code?: string },
      )
      expect(err?.code).to.equal('ERR_WORQ_NO_TRANSACTIONS')
      expect(() => task(q.mail.send, { tx: {} as never })).to.throw(TypeError, /tx/)
    } finally {
      await broker.close()
    }
  })
})

describe('postgres: outcomes too big to notify', () => {
  it('a result whose escaped form is over a notification’s 8000 bytes still arrives', async () => {
    const url = await postgresUrl()
    const w = await withWorker(url, b =>
      b.expose(function quotes(n: number) {
        return '"\\'.repeat(n) // each character is escaped twice on its way
      }),
    )
    try {
      const q = w.broker.queue()
      for (const n of [1_000, 2_500, 3_000, 5_000]) {
        const d = (await q.quotes(n)) as Deferred<string>
        expect(await d.result(5_000)).to.have.length(2 * n)
      }
      const p = (await q.quotes(100_000)) as Deferred<string>
      expect(await p.result(5_000)).to.have.length(200_000)
    } finally {
      await w.close()
    }
  })
})
