import { expect } from 'chai'
import pg from 'pg'
import { getBroker, task, TaskSpace, type Deferred } from '../../lib/index.js'
import { postgresUrl } from '../helpers/postgres.js'
import { withWorker } from '../helpers/util.js'

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
      await client.query('ROLLBACK')
      expect(err?.code).to.equal('ERR_WORQ_DUPLICATE_TASK')
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
