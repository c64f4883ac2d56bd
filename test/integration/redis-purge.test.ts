import { expect } from 'chai'
import { Redis } from 'ioredis'
import { getBroker, task } from '../../lib/index.js'
import { PURGE_STEP } from '../../lib/backends/purge-steps.js'
import { usePrivateRedis } from '../helpers/redis-server.js'
import { uniqueQueue } from '../helpers/util.js'

/** FCALLs the server has run so far (INFO commandstats). */
async function fcalls(admin: Redis): Promise<number> {
  const info = await admin.info('commandstats')
  return Number(/^cmdstat_fcall:calls=(\d+)/m.exec(info)?.[1] ?? 0)
}

// A purge goes in steps, each a call of its own, so that the server serves others between them
// (docs/lifecycle.md, "purge"); the contract suite checks what it cancels on every backend.
describe('redis: a purge in steps', function () {
  this.timeout(60_000)
  const own = usePrivateRedis()

  it('cancels every waiting task of every kind in steps of PURGE_STEP, dependents made ready included', async () => {
    const broker = getBroker(own.server.url, uniqueQueue('purge'))
    try {
      const q = broker.queue()
      const ready = 2 * PURGE_STEP + 300
      const calls = Array.from({ length: ready }, (_, i) => q.math.add(i, 1))
      const held = await Promise.all(calls)
      const prioritized = await task(q.math.add, { priority: -5 })(1, 2)
      const delayed = await task(q.math.add, { delay: 60_000 })(3, 4)
      // Waits on a task that the purge cancels; onError 'pass' would make it ready, and a purge
      // cancels it rather than let it run.
      const dependent = await task(q.math.add, { onError: 'pass' })(held[0]!, 1)
      expect(await broker.size()).to.equal(ready + 3)
      const before = await fcalls(own.admin)
      expect(await broker.purge()).to.equal(ready + 3)
      const steps = (await fcalls(own.admin)) - before
      expect(steps).to.be.at.least(Math.ceil((ready + 3) / PURGE_STEP))
      expect(await broker.size()).to.equal(0)
      for (const d of [held[0]!, held[ready - 1]!, prioritized, delayed, dependent])
        expect(await d!.status()).to.equal('cancelled')
    } finally {
      await broker.close()
    }
  })
})
