import { expect } from 'chai'
import { getBroker, task } from '../../lib/index.js'
import { PURGE_STEP } from '../../lib/backends/purge-steps.js'
import { uniqueQueue } from '../helpers/util.js'

// On memory:// a purge goes in steps of PURGE_STEP as on the servers (docs/lifecycle.md, "purge"):
// the process runs other work between them instead of stalling for the whole purge. The contract
// suite checks what a purge cancels on every backend.
describe('memory: a purge in steps', () => {
  it('lets other work of the process run between its steps, and cancels every waiting task', async () => {
    const broker = getBroker('memory://purge-steps', uniqueQueue('purge'))
    try {
      const q = broker.queue()
      const ready = 2 * PURGE_STEP + 300
      const held = await Promise.all(Array.from({ length: ready }, (_, i) => q.math.add(i, 1)))
      const delayed = await task(q.math.add, { delay: 60_000 })(3, 4)
      const dependent = await task(q.math.add, { onError: 'pass' })(held[0]!, 1)
      // Turns of the event loop taken while the purge runs: a purge in one call takes none.
      let turns = 0
      let purging = true
      const turn = (): void => {
        if (!purging) return
        turns++
        setImmediate(turn)
      }
      setImmediate(turn)
      const purged = await broker.purge()
      purging = false
      expect(purged).to.equal(ready + 2)
      expect(turns, 'event loop turns during the purge').to.be.at.least(
        Math.ceil((ready + 2) / PURGE_STEP) - 1,
      )
      expect(await broker.size()).to.equal(0)
      for (const d of [held[0]!, held[ready - 1]!, delayed, dependent])
        expect(await d.status()).to.equal('cancelled')
    } finally {
      await broker.close()
    }
  })
})
