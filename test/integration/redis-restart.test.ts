import { expect } from 'chai'
import { getBroker, WorkerPool, type Deferred } from '../../lib/index.js'
import { startRedis, type RedisServer } from '../helpers/redis-server.js'
import { uniqueQueue, until } from '../helpers/util.js'

describe('redis: server restart', () => {
  let server: RedisServer
  before(async () => {
    server = await startRedis({ appendonly: true })
  })
  after(() => server.stop())

  it('workers and waiters reconnect after the server restarts, and work goes on', async () => {
    const queue = uniqueQueue('restart')
    const broker = getBroker(server.url, queue)
    broker.expose(function echo(x: string) {
      return x
    })
    const pool = new WorkerPool(broker, { concurrency: 2, blockTimeout: 1000 })
    await pool.start()
    try {
      const q = broker.queue()
      expect(await ((await q.echo('before')) as Deferred<string>).result(5000)).to.equal('before')
      const { hub } = await broker.backend()
      const epoch = hub.epoch
      await server.restart()
      await until(() => hub.epoch > epoch, 10_000, 'the subscriber to come back')
      const after = (await q.echo('after')) as Deferred<string>
      expect(await after.result(10_000)).to.equal('after')
    } finally {
      await pool.stop()
      await broker.close()
    }
  })
})
