/**
 * Connection churn on postgres://: connections terminated by the server (`pg_terminate_backend`,
 * the listening one too) and cut by the network, with brokers closed and pools stopped at awkward
 * moments (while reconnecting, right after getBroker). Nothing may reject unhandled or throw
 * uncaught (the root hooks fail the run): a node-postgres client that emits 'error' with nobody
 * listening throws. `WORQ_CHURN_ROUNDS` loops it longer when hunting.
 */
import pg from 'pg'
import { getBroker, WorkerPool } from '../../lib/index.js'
import { freshDatabase } from '../helpers/postgres.js'
import { tcpForwarder, type TcpForwarder } from '../helpers/tcp-forwarder.js'
import { uniqueQueue } from '../helpers/util.js'
import { busy, CHURN_OPTIONS, inFlight, ROUNDS } from '../helpers/churn.js'

describe('postgres: connection churn never ends the process', function () {
  this.timeout(20_000 * ROUNDS)
  let admin: pg.Client
  let cut: TcpForwarder
  let url: string
  before(async () => {
    const direct = await freshDatabase()
    admin = new pg.Client({ connectionString: direct })
    admin.on('error', () => undefined)
    await admin.connect()
    // The schema in place first: the rounds churn connections, not migrations.
    const boot = getBroker(direct, 'boot')
    await boot.size()
    await boot.close()
    cut = await tcpForwarder(5432)
    const u = new URL(direct)
    u.port = String(cut.port)
    url = u.toString()
  })
  after(async () => {
    await cut?.close()
    await admin?.end()
  })

  /** Terminates every other connection to the test's database (`only`: those whose query matches). */
  const terminate = (only = '%') =>
    admin.query(
      `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
        WHERE datname = current_database() AND pid <> pg_backend_pid() AND query LIKE $1`,
      [only],
    )

  for (let round = 0; round < ROUNDS; round++) {
    it(`closed right after its connections are terminated (round ${round})`, async () => {
      const { broker, pool } = await busy(url)
      const calls = inFlight(broker)
      await terminate()
      await Promise.all([pool.stop(), broker.close()])
      await calls
    })

    it(`closed while its listening connection comes back (round ${round})`, async () => {
      const { broker, pool } = await busy(url)
      await terminate('LISTEN%')
      await Promise.all([pool.stop(), broker.close()])
    })

    it(`closed while its connections are cut and come back (round ${round})`, async () => {
      const { broker, pool } = await busy(url)
      const calls = inFlight(broker)
      await cut.cut()
      const closing = Promise.all([pool.stop(), broker.close()])
      await cut.restore()
      await closing
      await calls
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
  }
})
