import { expect } from 'chai'
import { Redis } from 'ioredis'
import { getBroker, type Broker, type Deferred } from '../../lib/index.js'
import { killAll, worq } from '../helpers/cli.js'
import { redisUrl } from '../helpers/redis-server.js'
import { uniqueQueue } from '../helpers/util.js'
import type { ex } from '../fixtures/exclusive-tasks.js'

const TASKS = new URL('../fixtures/exclusive-tasks.ts', import.meta.url).pathname

describe('redis: two worker processes', () => {
  let url: string
  let broker: Broker
  let side: Redis
  before(async () => {
    url = await redisUrl()
    side = new Redis(url)
  })
  after(() => side.disconnect())
  afterEach(async () => {
    killAll()
    await broker?.close()
  })

  it('never run the same task twice while both are alive, and share the work', async () => {
    const queue = uniqueQueue('excl')
    const hash = `test:{${queue}}:runs`
    broker = getBroker(url, queue)
    process.env.WORQ_TEST_SIDE_URL = url
    const workers = [1, 2].map(() =>
      worq(['worker', url, '--tasks', TASKS, '--queue', queue, '--concurrency', '8']),
    )
    await Promise.all(workers.map(w => w.line(/worker:start/)))
    const q = broker.queue<typeof ex>()
    const n = 2000
    const ds: Deferred<number>[] = []
    for (let i = 0; i < n; i += 100)
      ds.push(...(await Promise.all(Array.from({ length: 100 }, () => q.ex.mark(hash)))))
    const pids = await Promise.all(ds.map(d => d.result(30_000)))
    const runs = await side.hgetall(hash)
    expect(Object.keys(runs)).to.have.length(n)
    expect(Object.values(runs).filter(c => c !== '1')).to.deep.equal([])
    const workerPids = workers.map(w => w.proc.pid)
    expect(new Set(pids)).to.deep.equal(new Set(workerPids))
    await side.del(hash)
  })
})
