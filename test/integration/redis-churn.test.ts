/**
 * Connection churn on redis://: a server cut, killed connections and a paused server, with
 * brokers closed and pools stopped at awkward moments (while reconnecting, while paused, right
 * after getBroker). Nothing may reject unhandled or throw uncaught (the root hooks fail the run):
 * Node ends a process on either. `WORQ_CHURN_ROUNDS` loops it longer when hunting.
 */
import { getBroker, WorkerPool } from '../../lib/index.js'
import { usePrivateRedis } from '../helpers/redis-server.js'
import { tcpForwarder, type TcpForwarder } from '../helpers/tcp-forwarder.js'
import { uniqueQueue } from '../helpers/util.js'
import { busy, CHURN_OPTIONS, inFlight, ROUNDS } from '../helpers/churn.js'

describe('redis: connection churn never ends the process', function () {
  this.timeout(20_000 * ROUNDS)
  const ctx = usePrivateRedis()
  let cut: TcpForwarder
  let url: string
  beforeEach(async () => {
    cut = await tcpForwarder(ctx.server.port)
    url = `redis://127.0.0.1:${cut.port}/0`
  })
  afterEach(() => cut.close())

  for (let round = 0; round < ROUNDS; round++) {
    it(`closed while its connections are cut and reconnect (round ${round})`, async () => {
      const { broker, pool } = await busy(url)
      const calls = inFlight(broker)
      await cut.cut()
      const closing = Promise.all([pool.stop(), broker.close()])
      // Back while they close: the connections reconnect, renew and resend as they are closed.
      await cut.restore()
      await closing
      await calls
    })

    it(`closed right after its connections are killed (round ${round})`, async () => {
      const { broker, pool } = await busy(url)
      const calls = inFlight(broker)
      await ctx.admin.client('KILL', 'TYPE', 'normal', 'SKIPME', 'yes')
      await ctx.admin.client('KILL', 'TYPE', 'pubsub')
      await Promise.all([pool.stop(), broker.close()])
      await calls
    })

    it(`stopped and closed while the server is paused (round ${round})`, async () => {
      const { broker, pool } = await busy(url)
      const calls = inFlight(broker)
      await ctx.admin.client('PAUSE', 500, 'ALL')
      await Promise.all([pool.stop(), broker.close()])
      await calls
      await ctx.admin.client('UNPAUSE')
    })

    it(`closed right after getBroker, before its first connection is up (round ${round})`, async () => {
      const broker = getBroker(url, uniqueQueue('churn'), CHURN_OPTIONS)
      const calls = Promise.allSettled([broker.queue().echo('never'), broker.size()])
      await broker.close()
      await calls
      const pool = new WorkerPool(getBroker(url, uniqueQueue('churn'), CHURN_OPTIONS))
      const starting = pool.start()
      await pool.stop()
      await starting.catch(() => undefined)
    })

    it(`closed while the server restarts (round ${round})`, async () => {
      const { broker, pool } = await busy(url)
      const calls = inFlight(broker)
      const restarting = ctx.server.restart()
      await Promise.all([pool.stop(), broker.close()])
      await Promise.all([calls, restarting])
    })
  }
})
