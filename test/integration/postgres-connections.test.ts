import { expect } from 'chai'
import { getBroker, task, WorkerPool } from '../../lib/index.js'
import { postgresUrl } from '../helpers/postgres.js'
import { uniqueQueue } from '../helpers/util.js'

describe('postgres: the connections worq holds run one query at a time', () => {
  it('40 cancels at once on 10 queues sync the listening connection without overlapping queries on it', async () => {
    // A cancel syncs the listening connection (a query whose answer comes after the notifications
    // committed before it). node-postgres deprecates, and prints a warning about, a query sent
    // while another of the same client runs: concurrent syncs share one query at a time.
    const url = await postgresUrl()
    // Cancels on different queues run side by side on the pool's connections, and their syncs
    // come together.
    const brokers = Array.from({ length: 10 }, () => getBroker(url, uniqueQueue('pg-sync')))
    const pools = brokers.map(b => {
      b.expose(function work(x: number) {
        return x
      })
      return new WorkerPool(b, { concurrency: 1 })
    })
    const warnings: string[] = []
    const onWarning = (e: Error) => warnings.push(e.message)
    process.on('warning', onWarning)
    try {
      for (const p of pools) await p.start()
      const ds = (
        await Promise.all(
          brokers.map(b =>
            Promise.all(
              Array.from({ length: 4 }, (_, i) => task(b.queue().work, { delay: 60_000 })(i)),
            ),
          ),
        )
      ).flat()
      const cancelled = await Promise.all(ds.map(d => d.cancel()))
      expect(cancelled).to.deep.equal(ds.map(() => true))
      for (const b of brokers) expect(await b.size()).to.equal(0)
      await new Promise(r => setImmediate(r))
      expect(warnings.filter(m => /already executing a query/.test(m))).to.deep.equal([])
    } finally {
      process.off('warning', onWarning)
      for (const p of pools) await p.stop()
      for (const b of brokers) await b.close()
    }
  })
})
