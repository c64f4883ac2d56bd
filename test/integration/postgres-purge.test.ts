/**
 * A purge on PostgreSQL goes in steps, each a transaction of its own (schema version 12,
 * purge_step): what one step cancelled is visible, and the queue's lock free, before the next.
 */
import { expect } from 'chai'
import { getBroker } from '../../lib/index.js'
import { PURGE_STEP } from '../../lib/backends/purge-steps.js'
import { freshDatabase } from '../helpers/postgres.js'
import { uniqueQueue, until } from '../helpers/util.js'

describe('postgres: a purge in steps', function () {
  this.timeout(60_000)
  let url: string
  before(async () => {
    url = await freshDatabase()
  })

  it('commits each step: another connection sees part of the queue purged while the rest waits', async () => {
    const queue = uniqueQueue('purge')
    const broker = getBroker(url, queue)
    // Another backend instance (its own pool of connections), as another process would read.
    const reader = getBroker(`${url}${url.includes('?') ? '&' : '?'}application_name=reader`, queue)
    try {
      const q = broker.queue()
      const n = 5 * PURGE_STEP
      for (let i = 0; i < n; i += PURGE_STEP)
        await Promise.all(Array.from({ length: PURGE_STEP }, (_, j) => q.math.add(i + j, 1)))
      expect(await reader.size()).to.equal(n)
      const purging = broker.purge()
      let seen = n
      // A purge in one transaction shows nothing until all of it commits (seen would go n → 0).
      await until(async () => (seen = await reader.size()) < n, 30_000, 'the first step to commit')
      expect(seen, 'waiting tasks seen after the first step').to.be.above(0)
      // The queue's lock is free between steps: a cancel, which takes it, answers before the
      // purge has ended (in one transaction it waited for all of it).
      const first = await Promise.race([
        reader.cancel('no-such-task').then(() => 'cancel'),
        purging.then(() => 'purge'),
      ])
      expect(first).to.equal('cancel')
      expect(await purging).to.equal(n)
      expect(await reader.size()).to.equal(0)
    } finally {
      await reader.close()
      await broker.close()
    }
  })
})
