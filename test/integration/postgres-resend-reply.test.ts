/**
 * A postgres:// exchange whose connection drops after its commit, before its reply: the pool sends
 * the statement again (pool.ts), and the reply of the try sent again must be the one the first try
 * would have given: the tasks it reserved (which otherwise wait out their lease), and no lost lease
 * for an ignoreResult task it ended (whose row is gone). A proxy forwards the exchange that carries
 * the marker (a finished task's id), then cuts the connection at the first byte of its reply.
 */
import { expect } from 'chai'
import pg from 'pg'
import { encodeFinishes } from '../../lib/backends/postgres/finishes.js'
import { exchangeSql } from '../../lib/backends/postgres/reserved.js'
import { getBroker, task, TaskSpace, WorkerPool } from '../../lib/index.js'
import { expiredOutcome } from '../../lib/outcome.js'
import { cutAtReply } from '../helpers/cut-at-reply.js'
import { postgresUrl } from '../helpers/postgres.js'
import { uniqueQueue } from '../helpers/util.js'

describe('postgres: the reply of an exchange sent again after its commit', () => {
  async function setUp() {
    const proxy = await cutAtReply(await postgresUrl())
    const queue = uniqueQueue('pgagain')
    const broker = getBroker(proxy.url, queue)
    const { backend: b } = await broker.backend()
    return {
      proxy,
      queue,
      broker,
      b,
      async tearDown() {
        await broker.purge()
        await broker.close()
        proxy.close()
      },
    }
  }

  it('answers the tasks its first try reserved, under the tokens that try gave them', async () => {
    const { proxy, queue, broker, b, tearDown } = await setUp()
    try {
      const marker = `cut-${queue}`
      await task(broker.queue().func, { id: marker })()
      const [first] = (await b.exchange(queue, 'w', [], 1)).reserved
      await task(broker.queue().func, { id: 'next' })()
      proxy.arm(marker)
      // Finishes the marker and reserves `next`; committed, its reply cut, sent again.
      const { stale, reserved } = await b.exchange(
        queue,
        'w',
        [{ id: first!.id, token: first!.token, outcome: 'c1' }],
        1,
      )
      expect(proxy.cuts(), 'replies cut').to.equal(1)
      expect(stale).to.deep.equal([])
      expect(reserved.map(t => t.id)).to.deep.equal(['next'])
      expect(reserved[0]!.attempt, 'reserved once').to.equal(1)
      // The token answered is the task's: its finish is taken.
      const end = await b.exchange(
        queue,
        'w',
        [{ id: 'next', token: reserved[0]!.token, outcome: 'c2' }],
        0,
      )
      expect(end.stale).to.deep.equal([])
      expect(await b.status(queue, 'next')).to.deep.include({ status: 'completed', outcome: 'c2' })
    } finally {
      await tearDown()
    }
  })

  it('reserves as any exchange when its first try reserved nothing', async () => {
    const { proxy, queue, broker, b, tearDown } = await setUp()
    try {
      const marker = `cut-${queue}`
      await task(broker.queue().func, { id: marker })()
      const [first] = (await b.exchange(queue, 'w', [], 1)).reserved
      proxy.arm(marker)
      const { reserved } = await b.exchange(
        queue,
        'w',
        [{ id: first!.id, token: first!.token, outcome: 'c1' }],
        0,
      )
      expect(proxy.cuts(), 'replies cut').to.equal(1)
      expect(reserved).to.deep.equal([])
      await task(broker.queue().func, { id: 'later' })()
      const again = await b.exchange(queue, 'w', [], 1)
      expect(again.reserved.map(t => t.id)).to.deep.equal(['later'])
    } finally {
      await tearDown()
    }
  })

  it('reports no lost lease for an ignoreResult task its first try ended', async () => {
    const { proxy, queue, broker, b, tearDown } = await setUp()
    try {
      const marker = `cut-${queue}`
      await task(broker.queue().func, { id: marker, ignoreResult: true })()
      const [mine] = (await b.exchange(queue, 'w', [], 1)).reserved
      proxy.arm(marker)
      const { stale } = await b.exchange(
        queue,
        'w',
        [{ id: mine!.id, token: mine!.token, outcome: 'c1' }],
        0,
      )
      expect(proxy.cuts(), 'replies cut').to.equal(1)
      expect(stale).to.deep.equal([])
    } finally {
      await tearDown()
    }
  })

  it('still reports a finish refused before the cut: an ignoreResult task whose row had gone', async () => {
    const { proxy, queue, broker, b, tearDown } = await setUp()
    try {
      const marker = `cut-${queue}`
      await task(broker.queue().func, { id: marker, ignoreResult: true })()
      const [mine] = (await b.exchange(queue, 'w', [], 1)).reserved
      // Cancelled as it runs: its row goes, so this worker's finish was refused by the first try.
      expect(await b.cancel(queue, marker)).to.equal(true)
      await task(broker.queue().func, { id: 'other', ignoreResult: true })()
      const [other] = (await b.exchange(queue, 'w2', [], 1)).reserved
      proxy.arm(marker)
      const { stale } = await b.exchange(
        queue,
        'w2',
        [
          { id: other!.id, token: other!.token, outcome: 'c1' },
          // A token this worker never held, for a row that is gone: stale, resent or not.
          { id: mine!.id, token: `${mine!.token}x`, outcome: 'c1' },
        ],
        0,
      )
      expect(proxy.cuts(), 'replies cut').to.equal(1)
      expect(stale).to.deep.equal([marker])
    } finally {
      await tearDown()
    }
  })

  it('reports no lost lease for a retry its first try made, though the next attempt ended since', async () => {
    // The try sent again by hand: the same statement and call, with worq_call.again on, after the
    // retried task has run again and ended (which replaces the retry's mark on the task).
    const url = await postgresUrl()
    const queue = uniqueQueue('pgagain')
    const broker = getBroker(url, queue)
    const client = new pg.Client({ connectionString: url })
    await client.connect()
    try {
      const { backend: b } = await broker.backend()
      await task(broker.queue().func, { id: 'r', attempts: 2 })()
      const [run1] = (await b.exchange(queue, 'w', [], 1)).reserved
      const retry = {
        id: 'r',
        token: run1!.token,
        outcome: expiredOutcome('func', queue, 'r', 'once more', 1),
        retryAt: Date.now(),
      }
      const args = [queue, 'w', JSON.stringify(encodeFinishes(queue, [retry], 1 << 20)), 0]
      const send = async (again: 'on' | 'off') =>
        (await client.query(exchangeSql('worq'), [...args, 0, 0, '', 0, 'call1', again])).rows[0]
          .v as { stale: string[] }
      expect((await send('off')).stale).to.deep.equal([])
      const [run2] = (await b.exchange(queue, 'w2', [], 1)).reserved
      expect(run2?.attempt).to.equal(2)
      await b.exchange(queue, 'w2', [{ id: 'r', token: run2!.token, outcome: 'c1' }], 0)
      expect((await send('on')).stale, 'sent again').to.deep.equal([])
      // A call that is not the one that retried it is told the lease was lost.
      args[1] = 'w'
      const other = await client.query(exchangeSql('worq'), [...args, 0, 0, '', 0, 'call2', 'on'])
      expect(other.rows[0].v.stale).to.deep.equal(['r'])
    } finally {
      await client.end()
      await broker.purge()
      await broker.close()
    }
  })

  it('a pool whose exchange is cut after its commit runs the task that exchange reserved at once', async () => {
    const { proxy, queue, broker, tearDown } = await setUp()
    broker.expose(new TaskSpace('', { func: (x: number) => x }))
    const pool = new WorkerPool(broker, { concurrency: 1, prefetch: 0 })
    try {
      const marker = `cut-${queue}`
      const q = broker.queue()
      const first = await task(q.func, { id: marker })(1)
      const second = await task(q.func, { id: 'second' })(2)
      const lost: string[] = []
      pool.on('lease:lost', e => lost.push(e.id))
      // The pool's first exchange reserves `first`; the one that finishes it (the first to carry
      // its id) reserves `second`, and its reply is cut.
      proxy.arm(marker)
      const started = Date.now()
      await pool.start()
      expect(await first.result(10_000)).to.equal(1)
      expect(await second.result(10_000)).to.equal(2)
      expect(proxy.cuts(), 'replies cut').to.equal(1)
      // A lease with the default heartrate is 21 s: the reserved task did not wait it out.
      expect(Date.now() - started, 'ms to run both').to.be.below(5_000)
      expect(lost).to.deep.equal([])
    } finally {
      await pool.stop()
      await tearDown()
    }
  })
})
