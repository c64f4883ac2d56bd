/**
 * Which data a backend URL reaches, as one string: two URLs with the same identity reach the same
 * queues. worq/metrics compares brokers by it (one queue name on two identities is refused), so
 * `redis://h` and `redis://H:6379/0` count as one backend there.
 *
 * What counts: the kind of server and how it is reached where that cannot be one server's other
 * door (the scheme, with `postgresql:` as `postgres:`), the host lower-cased, the port (the
 * default written out), the Redis database or PostgreSQL database and schema (defaults written
 * out), a cluster's seed nodes or a Sentinel set's sentinels and master name (in any order).
 * What does not: credentials, TLS settings, timeouts, pool sizes and other connection options.
 * Host names are not resolved: `localhost` and `127.0.0.1` are two identities, as `localhost` may
 * resolve to `::1` too (another server can listen there) and Node connects to whichever of its
 * addresses answers first.
 *
 * A `memory://` URL is its own identity, as written: each spelling opens a store of its own in
 * the process (`memory://a` and `MEMORY://a` hold different queues).
 */
import { parsePostgresUrl } from './postgres/url.js'
import { parseTopology } from './redis/topology.js'

/**
 * The identity of the backend `raw` names. A URL no backend reads (from a Broker-like object that
 * getBroker did not check) is its own identity, as written.
 */
export function backendIdentity(raw: string): string {
  try {
    return identity(raw)
  } catch {
    return raw
  }
}

function identity(raw: string): string {
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(raw)?.[1]?.toLowerCase()
  if (scheme === 'postgres' || scheme === 'postgresql') return postgresIdentity(raw)
  if (scheme === undefined || !scheme.startsWith('redis')) return raw
  const topology = parseTopology(raw)
  const tls = scheme.startsWith('rediss') ? 'rediss' : 'redis'
  if (topology.kind === 'cluster') return `${tls}-cluster://${hosts(topology.nodes)}/0`
  const o = topology.options
  if (o.sentinels)
    return `redis-sentinel://${hosts(o.sentinels as Array<{ host?: string; port?: number }>)}/${encodeURIComponent(o.name ?? '')}/${o.db ?? 0}`
  return `${tls}://${host(o.host ?? '127.0.0.1', o.port ?? 6379)}/${o.db ?? 0}`
}

/** `host:port`, the host lower-cased (an IPv6 address in brackets). */
function host(name: string, port: number): string {
  const h = name.toLowerCase()
  return `${h.includes(':') ? `[${h}]` : h}:${port}`
}

/** A list of nodes, in one order whatever order the URL gave them in. */
function hosts(nodes: ReadonlyArray<{ host?: string; port?: number }>): string {
  const all = nodes.map(n => host(n.host ?? '127.0.0.1', n.port ?? 6379))
  return [...new Set(all)].sort().join(',')
}

/**
 * A PostgreSQL URL's server, database and schema. Without a database in the URL, node-postgres
 * connects to `PGDATABASE`, else to the database named for the user (the URL's, else `PGUSER`,
 * else `USER`, as node-postgres reads them): the identity names that database, though the user
 * is not part of it.
 */
function postgresIdentity(raw: string): string {
  const { connection, schema } = parsePostgresUrl(raw)
  const env = process.env
  const database =
    connection.database ||
    env.PGDATABASE ||
    connection.user ||
    env.PGUSER ||
    (process.platform === 'win32' ? env.USERNAME : env.USER) ||
    ''
  return `postgres://${host(connection.host ?? '127.0.0.1', connection.port ?? 5432)}/${encodeURIComponent(database)}?schema=${schema}`
}
