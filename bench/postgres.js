// A private PostgreSQL database for the benchmark's Postgres rows: one `worq_bench_<random>` per
// `npm run bench`, dropped and created again before every run (the Postgres counterpart of
// FLUSHALL on the private Redis), dropped at the end. The server is the one at BENCH_PG_URL
// (default postgres://postgres@127.0.0.1:5432/postgres, the maintenance database, whose own
// connections are not counted in the bench database's statistics).
import { execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
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
  // Without autovacuum the dead rows every library leaves pile up within a run (docs/postgres.md).
  const autovacuum = (await admin.query('SHOW autovacuum')).rows[0].autovacuum
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

  // The server's CPU, when it runs on this machine: the postmaster's reaped children's user and
  // system time (/proc/<pid>/stat cutime + cstime), which takes in every backend that has exited.
  // A run's sessions have all exited when stats() returns, so the difference is their CPU time
  // (and that of any other client's session that ended meanwhile on a shared server).
  let postmaster = null
  try {
    const dir = (await admin.query('SHOW data_directory')).rows[0].data_directory
    const pid = Number(readFileSync(join(dir, 'postmaster.pid'), 'utf8').split('\n')[0])
    readFileSync(`/proc/${pid}/stat`)
    postmaster = pid
  } catch {
    // Not readable (another machine, another user): no CPU row.
  }
  const ticks = postmaster ? Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' })) : 0
  const reapedCpuUs = () => {
    if (!postmaster) return NaN
    const fields = readFileSync(`/proc/${postmaster}/stat`, 'utf8').split(') ')[1].split(' ')
    // After the name: state is field 3 of stat(5), cutime 16 and cstime 17.
    return ((Number(fields[13]) + Number(fields[14])) / ticks) * 1e6
  }

  return {
    url: url.href,
    db,
    version: `PostgreSQL ${version}`,
    autovacuum,
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
      // Let the postmaster reap the backends that have just exited.
      await new Promise(r => setTimeout(r, 100))
      return { ...rows[0], serverCpuUs: reapedCpuUs() }
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
