// A private PostgreSQL database for the benchmark's Postgres rows: one `worq_bench_<random>` per
// `npm run bench`, dropped and created again before every run (the Postgres counterpart of
// FLUSHALL on the private Redis), dropped at the end. The server is the one at BENCH_PG_URL
// (default postgres://postgres@127.0.0.1:5432/postgres, the maintenance database, whose own
// connections are not counted in the bench database's statistics).
import { randomBytes } from 'node:crypto'
import pg from 'pg'

export const DEFAULT_ADMIN_URL = 'postgres://postgres@127.0.0.1:5432/postgres'

/**
 * Connects to the server and creates the private database; resolves to `{ reason }` when the
 * server cannot be reached (the bench prints it and skips the Postgres rows).
 */
export async function startPostgres(adminUrl = process.env.BENCH_PG_URL ?? DEFAULT_ADMIN_URL) {
  const admin = new pg.Client({ connectionString: adminUrl, connectionTimeoutMillis: 3000 })
  try {
    await admin.connect()
  } catch (err) {
    await admin.end().catch(() => {})
    return { reason: `PostgreSQL not reachable at ${redact(adminUrl)} (${err.message})` }
  }
  admin.on('error', () => {})
  const version = (await admin.query('SHOW server_version')).rows[0].server_version
  const db = `worq_bench_${randomBytes(4).toString('hex')}`
  const url = new URL(adminUrl)
  url.pathname = `/${db}`

  /** Ends every other session on the bench database (a runner's pool can outlive it briefly). */
  async function terminate() {
    await admin.query(
      'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()',
      [db],
    )
  }
  /** Waits until no session is left on the bench database, so their statistics are flushed. */
  async function settle(timeoutMs = 10_000) {
    const until = Date.now() + timeoutMs
    for (;;) {
      const { rows } = await admin.query(
        'SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = $1',
        [db],
      )
      if (rows[0].n === 0) return
      if (Date.now() > until) {
        await terminate()
        return
      }
      await new Promise(r => setTimeout(r, 20))
    }
  }
  async function drop() {
    await terminate()
    await admin.query(`DROP DATABASE IF EXISTS ${db}`)
  }
  // Like the private Redis (no persistence), the bench database does not wait for its WAL to reach
  // the disk at each commit: on this shared machine an fsync per commit measures the disk and the
  // neighbours more than the queues. BENCH_PG_SYNC_COMMIT=on keeps the server's setting.
  const syncCommit = process.env.BENCH_PG_SYNC_COMMIT === 'on' ? null : 'off'
  async function create() {
    await drop()
    await admin.query(`CREATE DATABASE ${db}`)
    if (syncCommit) await admin.query(`ALTER DATABASE ${db} SET synchronous_commit = ${syncCommit}`)
  }
  await create()

  return {
    url: url.href,
    db,
    version: `PostgreSQL ${version}`,
    synchronousCommit: syncCommit ?? 'the server’s setting',
    /** A fresh, empty bench database. */
    reset: create,
    settle,
    /**
     * The bench database's cumulative counters in pg_stat_database, read once every session on it
     * has ended (a backend flushes its statistics when it exits).
     */
    async stats() {
      await settle()
      await admin.query('SELECT pg_stat_clear_snapshot()')
      const { rows } = await admin.query(
        `SELECT xact_commit::float8 AS commits, xact_rollback::float8 AS rollbacks,
                (tup_inserted + tup_updated + tup_deleted)::float8 AS rows_written,
                tup_inserted::float8 AS inserted, tup_updated::float8 AS updated,
                tup_deleted::float8 AS deleted, blks_hit::float8 + blks_read::float8 AS blocks
           FROM pg_stat_database WHERE datname = $1`,
        [db],
      )
      return rows[0]
    },
    async stop() {
      try {
        await drop()
      } finally {
        await admin.end().catch(() => {})
      }
    },
  }
}

/** The URL without its password, for messages. */
export function redact(raw) {
  try {
    const u = new URL(raw)
    if (u.password) u.password = '***'
    return u.href
  } catch {
    return '(unparsable URL)'
  }
}
