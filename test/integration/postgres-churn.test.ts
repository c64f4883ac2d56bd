/**
 * Connection churn on postgres://: connections terminated by the server (`pg_terminate_backend`,
 * the listening one too) and cut by the network, with brokers closed and pools stopped at awkward
 * moments (while reconnecting, right after getBroker). Nothing may reject unhandled or throw
 * uncaught (the root hooks fail the run): a node-postgres client that emits 'error' with nobody
 * listening throws. `WORQ_CHURN_ROUNDS` loops it longer when hunting.
 */
import { expect } from 'chai'
import pg from 'pg'
import { getBroker, WorkerPool, type Broker, type Deferred } from '../../lib/index.js'
import { freshDatabase } from '../helpers/postgres.js'
import { tcpForwarder, type TcpForwarder } from '../helpers/tcp-forwarder.js'
import { uniqueQueue } from '../helpers/util.js'

const ROUNDS = Number(process.env.WORQ_CHURN_ROUNDS ?? 1)

/** Calls made while the server is away give up soon. */
const OPTIONS = { connectTimeoutMs: 2000 }

/** A broker with a task, a started pool and an event stream, and a first result delivered (every connection up). */
async function busy(url: string): Promise<{ broker: Broker; pool: WorkerPool }> {
  const broker = getBroker(url, uniqueQueue('churn'), OPTIONS)
  broker.expose(async function echo(x: string) {
    return x
  })
  const pool = new WorkerPool(broker, { concurrency: 4, blockTimeout: 200, sweepInterval: 100 })
  pool.on('pool:error', () => undefined)
  await pool.start()
  // An event stream reads on a connection of its own (Redis: blocking reads).
  broker.events().on('*', () => undefined)
  const d = (await broker.queue().echo('up')) as Deferred<string>
  expect(await d.result(5000)).to.equal('up')
  return { broker, pool }
}

/** Calls that stay in flight (their results awaited, whatever they end as). */
function inFlight(broker: Broker): Promise<unknown> {
  const q = broker.queue()
  return Promise.allSettled(
    Array.from({ length: 8 }, async (_, i) => ((await q.echo(`x${i}`)) as Deferred).result(2000)),
  )
}

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
      const broker = getBroker(url, uniqueQueue('churn'), OPTIONS)
      const calls = Promise.allSettled([broker.queue().echo('never'), broker.size()])
      await broker.close()
      await calls
      const pool = new WorkerPool(getBroker(url, uniqueQueue('churn'), OPTIONS))
      const starting = pool.start()
      await pool.stop()
      await starting.catch(() => undefined)
    })
  }
})
