/**
 * The bound of a pool's `prefetch` on every backend (docs/worker.md, "Sizing concurrency and
 * processes"). It had none: on PostgreSQL a pool with a prefetch past 2^31 − 1 ran nothing, every
 * exchange failing with `value "…" is out of range for type integer` (a pool:error each time).
 */
import { expect } from 'chai'
import { getBroker, WorkerPool } from '../../lib/index.js'
import { MAX_CONCURRENCY, MAX_PREFETCH } from '../../lib/worker/maxima.js'
import { backends } from '../helpers/backends.js'
import { uniqueQueue } from '../helpers/util.js'

for (const backend of backends) {
  describe(`contract: a pool's prefetch [${backend.name}]`, () => {
    let url: string
    before(async () => {
      url = await backend.url()
    })

    it('a prefetch past 2^31 − 1 ran nothing on PostgreSQL: past the concurrency maximum it is a TypeError naming `prefetch`', async () => {
      const broker = getBroker(url, uniqueQueue('prefetch'))
      broker.expose(function echo(x: number) {
        return x
      })
      try {
        for (const prefetch of [MAX_PREFETCH + 1, 2 ** 31, 2 ** 53, -1, 1.5, '16', Infinity])
          expect(() => new WorkerPool(broker, { prefetch: prefetch as number }), String(prefetch))
            .to.throw(TypeError)
            .with.property(
              'message',
              `Expected \`prefetch\` to be an integer from 0 to ${MAX_PREFETCH}, got ${String(prefetch)}`,
            )
        // The bounds themselves are taken, and the maximum reserves and runs tasks: the short
        // tasks that come first turn the prefetch on, so the later exchanges ask for all of it.
        expect(MAX_PREFETCH).to.equal(MAX_CONCURRENCY)
        expect(() => new WorkerPool(broker, { prefetch: 0 })).to.not.throw()
        const pool = new WorkerPool(broker, { concurrency: 2, prefetch: MAX_PREFETCH })
        const errors: Error[] = []
        pool.on('pool:error', err => errors.push(err))
        await pool.start()
        try {
          const q = broker.queue()
          for (let i = 0; i < 20; i++) expect(await (await q.echo(i)).result(5000)).to.equal(i)
          const many = await Promise.all(Array.from({ length: 50 }, (_, i) => q.echo(i)))
          expect(await Promise.all(many.map(d => d.result(5000)))).to.have.length(50)
        } finally {
          await pool.stop()
        }
        expect(errors).to.deep.equal([])
      } finally {
        await broker.close()
      }
    })
  })
}
