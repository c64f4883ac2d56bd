import { expect } from 'chai'
import { getBroker, TaskFailure, WorkerPool } from '../../lib/index.js'
import { backends } from '../helpers/backends.js'
import { uniqueQueue } from '../helpers/util.js'

for (const backend of backends) {
  describe(`chaos: hostile values [${backend.name}]`, function () {
    this.timeout(60_000)

    it('cyclic, deep, huge and unserializable values, unknown and prototype names: refused at the call or failed as a task; the worker goes on', async () => {
      const url = await backend.url()
      const broker = getBroker(url, uniqueQueue('values'), { maxPayloadBytes: 1 << 20 })
      broker
        .expose(function echo(x: unknown) {
          return x
        })
        .expose(function huge(n: number) {
          return 'x'.repeat(n)
        })
        .expose(function cyclic() {
          const o: Record<string, unknown> = { a: 1 }
          o.self = o
          return o
        })
      const pool = new WorkerPool(broker, { concurrency: 2 })
      const q = broker.queue()
      let tried = 0
      try {
        await pool.start()
        // A cyclic argument travels as a cycle (superjson keeps referential equality).
        const cyc: Record<string, unknown> = { name: 'loop' }
        cyc.self = cyc
        const back = (await (await q.echo(cyc)).result(10_000)) as Record<string, unknown>
        tried++
        expect(back.self).to.equal(back)
        const cycResult = (await (await q.cyclic()).result(10_000)) as Record<string, unknown>
        tried++
        expect(cycResult.self).to.equal(cycResult)
        // Arguments over the payload limit are refused at the call; nothing is enqueued.
        const tooBig = await q.echo('y'.repeat(2 << 20)).catch((e: unknown) => e)
        tried++
        expect(tooBig).to.have.property('code', 'ERR_WORQ_PAYLOAD_TOO_LARGE')
        // A result over the limit fails its task, saying so.
        const big = await q.huge(2 << 20)
        tried++
        const err = await big.result(10_000).catch((e: unknown) => e)
        expect(err).to.be.instanceOf(TaskFailure)
        expect((err as TaskFailure).remote.name).to.equal('PayloadTooLarge')
        // Very deep arguments: refused at the call or failed as a task, never a crash.
        let deep: unknown = 0
        for (let i = 0; i < 20_000; i++) deep = [deep]
        const deepCall = await q
          .echo(deep)
          .then(d => d!.result(10_000))
          .catch((e: unknown) => e)
        tried++
        expect(deepCall).to.be.instanceOf(Error)
        // The worker is still there.
        expect(await (await q.echo('still here')).result(10_000)).to.equal('still here')
        console.log(`      ${tried} hostile values tried on ${backend.name}`)
      } finally {
        await pool.stop({ timeout: 1000 })
        await broker.close()
      }
    })
  })
}
