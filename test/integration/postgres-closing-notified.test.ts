/**
 * A postgres:// backend that is closing still hears notifications until its LISTEN connection has
 * ended. A handover too big for its notification is read back; that read, on a backend already
 * closed, must fail as a rejection its caller handles, not throw: thrown, it escaped the handler
 * of the read's failure and rejected unhandled (BrokerClosed), which ends a Node process. The
 * churn test met it when the LISTEN connection came back (its gap re-reads handovers) while the
 * backend closed.
 */
import { expect } from 'chai'
import pg from 'pg'
import { getBroker } from '../../lib/index.js'
import type { PostgresBackend } from '../../lib/backends/postgres/postgres.js'
import { Listener } from '../../lib/backends/postgres/listen.js'
import { postgresUrl } from '../helpers/postgres.js'
import { latch, unhandled, uniqueQueue } from '../helpers/util.js'

describe('postgres: a handover heard while the backend closes', () => {
  it('read back on a closed backend, it rejects nothing unhandled', async () => {
    const url = await postgresUrl()
    const admin = new pg.Client({ connectionString: url })
    admin.on('error', () => undefined)
    await admin.connect()
    const queue = uniqueQueue('closing-notified')
    const broker = getBroker(url, queue)
    const { backend } = (await broker.backend()) as unknown as { backend: PostgresBackend }
    await backend.listen(
      () => undefined,
      () => undefined,
    )
    // The LISTEN connection ends only once the test has sent its notification.
    const gate = latch()
    const close = Listener.prototype.close
    Listener.prototype.close = async function (this: Listener) {
      await gate.promise
      return close.call(this)
    }
    try {
      const closing = broker.close()
      // Too big for the notification (null rows): the backend reads the handover back.
      const payload = JSON.stringify({ h: [queue, 'w1', null] })
      await admin.query(`SELECT pg_notify($1, $2)`, [
        `${backend.schema}.o.${backend.clientId}`,
        payload,
      ])
      const rejected = unhandled(500)
      expect(await rejected).to.equal(undefined)
      gate.resolve()
      await closing
    } finally {
      Listener.prototype.close = close
      gate.resolve()
      await admin.end()
    }
  })
})
