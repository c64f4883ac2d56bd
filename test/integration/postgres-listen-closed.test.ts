/**
 * A postgres:// backend closed while its LISTEN connection is being made (connected, its LISTEN
 * statements not yet answered): that connection was not the listener's yet, so its close ended
 * nothing, and the connection stayed open for good (a server backend, and a socket that keeps
 * the process alive).
 */
import { expect } from 'chai'
import pg from 'pg'
import { getBroker } from '../../lib/index.js'
import { silentProxy } from '../helpers/chaos-proxy.js'
import { freshDatabase } from '../helpers/postgres.js'
import { uniqueQueue } from '../helpers/util.js'

describe('postgres: closed while its LISTEN connection is made', () => {
  it('ends that connection', async () => {
    const direct = await freshDatabase()
    const admin = new pg.Client({ connectionString: direct })
    admin.on('error', () => undefined)
    await admin.connect()
    const boot = getBroker(direct, 'boot')
    await boot.size() // the schema in place
    await boot.close()
    const proxy = await silentProxy('redis://127.0.0.1:5432/0')
    const url = new URL(direct)
    url.port = new URL(proxy.url).port
    const broker = getBroker(url.toString(), uniqueQueue('listen-closed'))
    const listening = (sql: string) =>
      admin.query(
        `SELECT count(*)::int AS n FROM pg_stat_activity
          WHERE datname = current_database() AND pid <> pg_backend_pid() AND query LIKE ${sql}`,
      )
    try {
      // The LISTEN's reply never comes back: the connection is made, not yet the listener's.
      const trapped = proxy.swallowRepliesAfter('LISTEN')
      const { backend } = await broker.backend()
      const listen = backend.listen(
        () => undefined,
        () => undefined,
      )
      listen.catch(() => undefined)
      await trapped
      await broker.close()
      // Its server backend ends once the client ends the connection.
      const until = Date.now() + 3000
      let n = 1
      while (n > 0 && Date.now() < until) n = (await listening(`'LISTEN%'`)).rows[0].n as number
      expect(n).to.equal(0)
    } finally {
      proxy.close()
      await admin.end()
    }
  })
})
