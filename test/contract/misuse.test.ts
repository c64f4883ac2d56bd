/**
 * What a caller may get wrong, or send that is unusual, on every backend: each is a clear error at
 * the call or works, and nothing is left behind that stalls the queue (found by probing the API:
 * docs/errors.md, "Argument checks").
 */
import { expect } from 'chai'
import { BrokerClosed, getBroker, task, TaskFailure, WorkerPool } from '../../lib/index.js'
import { MAX_NESTING } from '../../lib/serializer.js'
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

    it('arguments nested 2 000 deep overflowed the stack (an uncoded RangeError): past MAX_NESTING a TypeError at the call names the limit', async () => {
      const broker = getBroker(url, uniqueQueue('deep'))
      broker.expose(function echo(x: unknown) {
        return x
      })
      broker.expose(function deep(n: number) {
        let v: unknown = 0
        for (let i = 0; i < n; i++) v = [v]
        return v
      })
      const pool = new WorkerPool(broker)
      try {
        await pool.start()
        const q = broker.queue()
        const nest = (n: number, wrap: (v: unknown) => unknown) => {
          let v: unknown = new Date(0) // not plain JSON: the faithfulness check walks it all
          for (let i = 0; i < n; i++) v = wrap(v)
          return v
        }
        const wraps: Record<string, (v: unknown) => unknown> = {
          array: v => [v],
          object: v => ({ o: v }),
          map: v => new Map([['k', v]]),
          set: v => new Set([v]),
          promise: v => ({ p: Promise.resolve(v) }),
        }
        for (const [kind, wrap] of Object.entries(wraps)) {
          for (const n of [MAX_NESTING + 1, 2000, 20_000]) {
            const err = await q.echo(nest(n, wrap)).catch((e: unknown) => e)
            expect(err, `${kind} ${n}`).to.be.instanceOf(TypeError)
            expect((err as Error).message, `${kind} ${n}`).to.match(
              /^args\[0\].* is nested more than 256 levels deep .*flatten it/,
            )
          }
        }
        // At the limit the value arrives as it was, on every backend.
        const atLimit = nest(MAX_NESTING - 1, v => [v]) // arrays around a Date: 255 + the list
        const back = await (await q.echo([atLimit])).result(10_000)
        expect(back).to.deep.equal([atLimit])
        const maps = nest(MAX_NESTING, v => new Map([['k', v]]))
        expect(await (await q.echo(maps)).result(10_000)).to.deep.equal(maps)
        // A result nested too deep fails its task, saying why; the worker goes on.
        const failed = await (await q.deep(2000)).result(10_000).catch((e: unknown) => e)
        expect(failed).to.be.instanceOf(TaskFailure)
        expect((failed as TaskFailure).remote.message).to.match(/nested more than 256 levels/)
        expect(await (await q.echo('after')).result(10_000)).to.equal('after')
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
