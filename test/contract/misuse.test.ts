/**
 * What a caller may get wrong, or send that is unusual, on every backend: each is a clear error at
 * the call or works, and nothing is left behind that stalls the queue (found by probing the API:
 * docs/errors.md, "Argument checks").
 */
import { expect } from 'chai'
import { BrokerClosed, getBroker, task, WorkerPool } from '../../lib/index.js'
import { backends } from '../helpers/backends.js'
import { uniqueQueue } from '../helpers/util.js'

for (const backend of backends) {
  describe(`contract: misuse and unusual values [${backend.name}]`, () => {
    let url: string
    before(async () => {
      url = await backend.url()
    })

    it('fractional durations are rounded up to whole ms; the queue goes on', async () => {
      const broker = getBroker(url, uniqueQueue('frac'))
      broker.expose(function echo(x: unknown) {
        return x
      })
      const pool = new WorkerPool(broker, { concurrency: 2 })
      try {
        await pool.start()
        const q = broker.queue()
        // A fractional cache TTL made every exchange of the queue fail on PostgreSQL (bigint).
        const cached = await task(q.echo, { cache: { ttl: 1000.5 } })('cached')
        const odd = await task(q.echo, {
          delay: 1.5,
          timeout: 1000.5,
          heartrate: 1000.5,
          resultTimeout: 60_000.5,
          backoff: 0.5,
        })('odd')
        expect(await cached.result(5000)).to.equal('cached')
        expect(await odd.result(5000)).to.equal('odd')
        expect(await (await q.echo('after')).result(5000)).to.equal('after')
      } finally {
        await pool.stop()
        await broker.close()
      }
    })

    it('arguments with promises in cycles, and Buffers, arrive as they were', async () => {
      const broker = getBroker(url, uniqueQueue('values'))
      broker.expose(function echo(x: unknown) {
        return x
      })
      const pool = new WorkerPool(broker)
      try {
        await pool.start()
        const q = broker.queue()
        const cyclic: Record<string, unknown> = { p: Promise.resolve(1) }
        cyclic.self = cyclic
        const back = (await (await q.echo(cyclic)).result(5000)) as Record<string, unknown>
        expect(back.p).to.equal(1)
        expect(back.self).to.equal(back)
        const bytes = (await (await q.echo(Buffer.from('bytes'))).result(5000)) as Buffer
        expect(Buffer.isBuffer(bytes)).to.equal(true)
        expect(bytes.toString()).to.equal('bytes')
      } finally {
        await pool.stop()
        await broker.close()
      }
    })

    it('a closed broker refuses an event stream at once; bad listeners and waits past a timer’s limit are refused', async () => {
      const broker = getBroker(url, uniqueQueue('closed'))
      const d = await broker.queue().echo(1)
      for (const ms of [2 ** 31, Infinity, -1, Number.NaN])
        await d.wait(ms).then(
          () => expect.fail(`wait(${ms}) resolved`),
          (err: unknown) => expect(err, String(ms)).to.be.instanceOf(TypeError),
        )
      const events = broker.events()
      expect(() => events.on('finished' as 'completed', () => undefined)).to.throw(
        TypeError,
        /Unknown event type "finished"/,
      )
      expect(() => events.on('completed', 'log' as unknown as () => void)).to.throw(
        TypeError,
        /listener to be a function/,
      )
      await events.close()
      await broker.purge()
      await broker.close()
      expect(() => broker.events({ since: '5' })).to.throw(BrokerClosed)
      expect(() => broker.events()).to.throw(BrokerClosed)
    })
  })
}
