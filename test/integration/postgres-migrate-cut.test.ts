/**
 * The connection that migrates the schema is checked out of node-postgres's pool, which listens
 * for errors only on the connections it holds idle. Cut while it migrates, that connection must not
 * emit 'error' with nobody listening: node-postgres then throws, uncaught, which ends a Node
 * process.
 */
import { expect } from 'chai'
import pg from 'pg'
import { getBroker } from '../../lib/index.js'
import { BackendUnreachable } from '../../lib/errors.js'
import { freshDatabase } from '../helpers/postgres.js'
import { tcpForwarder } from '../helpers/tcp-forwarder.js'
import { uniqueQueue } from '../helpers/util.js'

const LOCK = `SELECT pg_advisory_lock(hashtext('worq.migrate:worq'))`

describe('postgres: the migrating connection cut', () => {
  it('throws nothing uncaught; the call fails as unreachable', async () => {
    const direct = await freshDatabase()
    const admin = new pg.Client({ connectionString: direct })
    admin.on('error', () => undefined)
    await admin.connect()
    const cut = await tcpForwarder(5432)
    const url = new URL(direct)
    url.port = String(cut.port)
    const broker = getBroker(url.toString(), uniqueQueue('migrate-cut'), { connectTimeoutMs: 300 })
    try {
      // Another process migrates: this backend's migration waits for the lock, on a connection of
      // the pool's that is checked out.
      await admin.query(LOCK)
      const size = broker.size().catch((err: unknown) => err)
      for (;;) {
        const { rows } = await admin.query(
          `SELECT 1 FROM pg_stat_activity WHERE wait_event = 'advisory' AND datname = current_database()`,
        )
        if (rows.length > 0) break
      }
      await cut.cut()
      expect(await size).to.be.instanceOf(BackendUnreachable)
    } finally {
      await broker.close()
      await cut.close()
      await admin.end()
    }
  })
})
