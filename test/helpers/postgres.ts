/**
 * A private PostgreSQL database for tests: `worq_test_<random>` on the server at 127.0.0.1:5432
 * (user postgres; `PG_ADMIN_URL` names another), created on first use and dropped (its connections
 * terminated) when the test run ends. With `DATABASE_URL` set, tests use that database instead and
 * nothing is created or dropped. An unreachable server fails with how to start one.
 */
import { randomBytes } from 'node:crypto'
import pg from 'pg'

const ADMIN = process.env.PG_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres'

export const START_PG =
  'PostgreSQL is not reachable at 127.0.0.1:5432 (user postgres); the postgres:// tests need it. Start it with `pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start` (Debian), install it with `apt-get install postgresql`, or set DATABASE_URL to a database the tests may use'

let made: Promise<string> | undefined
let dropped = false
const databases: string[] = []

async function admin<T>(fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: ADMIN, connectionTimeoutMillis: 3_000 })
  try {
    await c.connect()
  } catch (err) {
    throw new Error(`${START_PG} (${(err as Error).message})`, { cause: err })
  }
  try {
    return await fn(c)
  } finally {
    await c.end()
  }
}

/** Creates a fresh private database and returns its URL (dropped at the end of the run). */
export async function freshDatabase(): Promise<string> {
  const name = `worq_test_${randomBytes(6).toString('hex')}`
  await admin(c => c.query(`CREATE DATABASE ${name}`))
  databases.push(name)
  const u = new URL(ADMIN)
  u.pathname = `/${name}`
  return u.toString()
}

/** The URL of the run's database (the same for every call). */
export function postgresUrl(): Promise<string> {
  if (process.env.DATABASE_URL) return Promise.resolve(process.env.DATABASE_URL)
  made ??= freshDatabase()
  return made
}

/** Drops every database this run made, terminating their connections first. */
export async function dropDatabases(): Promise<void> {
  if (dropped || databases.length === 0) return
  dropped = true
  await admin(async c => {
    for (const name of databases.splice(0))
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)
  })
}

/** Whether the admin server answers (for the default set of backends). */
export async function postgresReachable(): Promise<boolean> {
  try {
    await admin(async () => undefined)
    return true
  } catch {
    return false
  }
}

if (typeof after === 'function') after(dropDatabases)
