import { expect } from 'chai'
import { Redis } from 'ioredis'
import { getBroker, task, TaskSpace, WorkerPool } from '../../lib/index.js'
import { latch } from '../helpers/util.js'
import { redisUrl } from '../helpers/redis-server.js'
import { uniqueQueue } from '../helpers/util.js'
import type { cpu } from '../fixtures/soak-tasks.js'

const TASKS = new URL('../fixtures/soak-tasks.ts', import.meta.url).pathname

describe('chaos: event-loop starvation', function () {
  this.timeout(60_000)

  it('a task blocking its child process past the lease runs once: the parent keeps the lease alive', async () => {
    const url = await redisUrl()
    process.env.WORQ_TEST_SIDE_URL = url
    const side = new Redis(url)
    const queue = uniqueQueue('starve')
    const hash = `test:{${queue}}:runs`
    const isolated = getBroker(url, queue)
    const other = getBroker(url, queue, { watchdog: {} })
    const child = new WorkerPool(isolated, {
      processes: 1,
      tasks: TASKS,
      concurrency: 1,
      sweepInterval: 50,
    })
    // A second worker that sweeps often and would run the task again if its lease lapsed.
    const thief = new WorkerPool(other.expose(new TaskSpace('cpu').task(() => 'stolen', 'block')), {
      concurrency: 1,
      sweepInterval: 50,
    })
    const pools = [child, thief]
    const lost: string[] = []
    for (const p of pools) p.on('lease:lost', e => lost.push(e.id))
    try {
      await child.start()
      const started = latch()
      child.once('task:start', () => started.resolve())
      const q = isolated.queue<typeof cpu>()
      // heartrate 100 ms: the lease is 1.2 s; the task blocks its child's event loop for 2.5 s.
      const d = await task(q.cpu.block, { heartrate: 100, attempts: 3 })(hash, 2500)
      await started.promise
      await thief.start()
      expect(await d.result(20_000)).to.equal('unblocked')
      expect(await side.hget(hash, d.id)).to.equal('1')
      expect(lost).to.deep.equal([])
    } finally {
      await Promise.all(pools.map(p => p.stop({ timeout: 1000 })))
      await isolated.close()
      await other.close()
      await side.del(hash)
      side.disconnect()
    }
  })
})
