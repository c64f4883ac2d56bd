/**
 * Parses `postgres://[user[:password]@]host[:port]/database[?schema=…&sslmode=…&pool=…&prepare=…]` (and
 * `postgresql://`) into node-postgres settings. A wrong part is a BadUrl naming it.
 */
import type { PoolConfig } from 'pg'
import { BadUrl } from '../../errors.js'

/** What a postgres:// URL says. */
export interface PostgresUrl {
  /** node-postgres connection settings (no pool size, no timeouts). */
  connection: PoolConfig
  /** The schema worq's tables live in. */
  schema: string
  /** Most pooled connections (the LISTEN connection comes on top). */
  pool: number
  /**
   * Whether the hot statements (enqueue, exchange) are named prepared statements, parsed and
   * planned once per connection. `?prepare=false` for a connection pooler that cannot keep them
   * (PgBouncer in transaction mode before 1.21).
   */
  prepare: boolean
}

const PARAMS = new Set(['schema', 'sslmode', 'pool', 'prepare', 'application_name'])
const SSL_MODES = new Set(['disable', 'prefer', 'require', 'verify-ca', 'verify-full', 'no-verify'])

/** Reads a postgres:// or postgresql:// URL. Throws BadUrl naming the wrong part. */
export function parsePostgresUrl(raw: string): PostgresUrl {
  const port = /^postgres(?:ql)?:\/\/(?:[^@/]*@)?(?:\[[^\]]*\]|[^:/?#]*)(?::([^/?#]*))?/.exec(
    raw,
  )?.[1]
  if (
    port !== undefined &&
    port !== '' &&
    (!/^\d+$/.test(port) || Number(port) < 1 || Number(port) > 65535)
  )
    throw new BadUrl(raw, `the port "${port}" is not a number from 1 to 65535`)
  let url: URL
  try {
    url = new URL(raw)
  } catch {
    throw new BadUrl(raw, 'it is not a URL; expected something like "postgres://user@host:5432/db"')
  }
  if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:')
    throw new BadUrl(raw, `the scheme "${url.protocol}" is not postgres: or postgresql:`)
  if (url.hash !== '') throw new BadUrl(raw, 'a #fragment means nothing in a PostgreSQL URL')
  if (url.port !== '') {
    const n = Number(url.port)
    if (!/^\d+$/.test(url.port) || n < 1 || n > 65535)
      throw new BadUrl(raw, `the port "${url.port}" is not a number from 1 to 65535`)
  }
  const database = decodeURIComponent(url.pathname.replace(/^\//, ''))
  if (database.includes('/'))
    throw new BadUrl(
      raw,
      `the database "${database}" contains a "/"; the path is one database name`,
    )
  for (const key of url.searchParams.keys())
    if (!PARAMS.has(key))
      throw new BadUrl(
        raw,
        `the parameter "${key}" is not known; use schema, sslmode, pool, prepare or application_name`,
      )
  const schema = url.searchParams.get('schema') ?? 'worq'
  if (!/^[a-z_][a-z0-9_]{0,39}$/.test(schema))
    throw new BadUrl(
      raw,
      `the schema "${schema}" is not a lower-case SQL name of 1–40 letters, digits and _`,
    )
  const poolText = url.searchParams.get('pool') ?? '10'
  const pool = Number(poolText)
  if (!/^\d+$/.test(poolText) || pool < 1 || pool > 1000)
    throw new BadUrl(raw, `the pool size "${poolText}" is not a whole number from 1 to 1000`)
  const prepareText = url.searchParams.get('prepare') ?? 'true'
  if (prepareText !== 'true' && prepareText !== 'false')
    throw new BadUrl(raw, `prepare "${prepareText}" is neither true nor false`)
  const sslmode = url.searchParams.get('sslmode') ?? 'disable'
  if (!SSL_MODES.has(sslmode))
    throw new BadUrl(raw, `the sslmode "${sslmode}" is not one of ${[...SSL_MODES].join(', ')}`)
  const connection: PoolConfig = {
    host: url.hostname.replace(/^\[(.*)\]$/, '$1') || '127.0.0.1',
    port: url.port ? Number(url.port) : 5432,
    application_name: url.searchParams.get('application_name') ?? 'worq',
  }
  if (database) connection.database = database
  if (url.username) connection.user = decodeURIComponent(url.username)
  if (url.password) connection.password = decodeURIComponent(url.password)
  if (sslmode === 'no-verify' || sslmode === 'require' || sslmode === 'prefer')
    connection.ssl = { rejectUnauthorized: false }
  else if (sslmode !== 'disable') connection.ssl = { rejectUnauthorized: true }
  return { connection, schema, pool, prepare: prepareText === 'true' }
}
