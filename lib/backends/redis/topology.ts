/**
 * Where a Redis backend's data lives, from its URL: one server (`redis://`, `rediss://`), a Redis
 * Cluster (`redis-cluster://`, `rediss-cluster://`: seed nodes, ioredis `Cluster`), or a master
 * found through Sentinel (`redis-sentinel://`: ioredis with `sentinels`). docs/cluster.md describes
 * the URLs; a wrong part is a BadUrl naming it.
 */
import type { ClusterOptions, RedisOptions } from 'ioredis'
import { BadUrl } from '../../errors.js'
import { parseRedisUrl } from './url.js'

/** One server, or a master behind Sentinel: plain ioredis connections. */
export interface SingleTopology {
  kind: 'single'
  /** ioredis options of every connection (with `sentinels` and `name` behind Sentinel). */
  options: RedisOptions
}

/** A Redis Cluster: ioredis `Cluster` connections from the seed nodes. */
export interface ClusterTopology {
  kind: 'cluster'
  /** Seed nodes (ioredis finds the rest with CLUSTER SLOTS). */
  nodes: Array<{ host: string; port: number }>
  /** `Cluster` options; `redisOptions` are those of every node connection. */
  options: ClusterOptions & { redisOptions: RedisOptions }
}

/** What a backend URL says about the servers. */
export type Topology = SingleTopology | ClusterTopology

/** The URL schemes of the Redis backend. */
export const REDIS_SCHEMES = [
  'redis:',
  'rediss:',
  'redis-cluster:',
  'rediss-cluster:',
  'redis-sentinel:',
] as const

/** Query options a `redis-cluster://` URL may carry: ioredis `Cluster` options, in ms or counts. */
const CLUSTER_NUMBERS = [
  'maxRedirections',
  'retryDelayOnFailover',
  'retryDelayOnClusterDown',
  'retryDelayOnTryAgain',
  'retryDelayOnMoved',
  'slotsRefreshTimeout',
  'slotsRefreshInterval',
] as const
/** Query options of every node connection (both kinds): ioredis options, in ms. */
const CONNECTION_NUMBERS = ['connectTimeout', 'commandTimeout'] as const
/** Query options a `redis-sentinel://` URL may carry besides those. */
const SENTINEL_STRINGS = ['sentinelUsername', 'sentinelPassword'] as const

const SHAPE = /^([a-z-]+):\/\/(?:([^@/?#]*)@)?([^/?#]*)(\/[^?#]*)?(\?[^#]*)?(#.*)?$/i

function hostList(raw: string, list: string, defaultPort: number) {
  if (list === '') throw new BadUrl(raw, 'no host:port is given; list at least one seed node')
  return list.split(',').map(part => {
    const m = /^(\[[^\]]+\]|[^:[\]@]+)(?::(.*))?$/.exec(part.trim())
    if (!m)
      throw new BadUrl(
        raw,
        part.includes('@')
          ? 'the hosts hold an @ (of a user name or password?): percent-encode an @ there as %40'
          : `the host "${part}" is not host:port`,
      )
    const port = m[2] ?? String(defaultPort)
    const n = Number(port)
    if (!/^\d+$/.test(port) || n < 1 || n > 65535)
      throw new BadUrl(raw, `the port "${port}" of host "${m[1]}" is not a number from 1 to 65535`)
    return { host: m[1]!.replace(/^\[(.*)\]$/, '$1'), port: n }
  })
}

function credentials(raw: string, auth: string | undefined): RedisOptions {
  if (auth === undefined || auth === '') return {}
  const colon = auth.indexOf(':')
  const user = colon < 0 ? auth : auth.slice(0, colon)
  const out: RedisOptions = {}
  try {
    if (user !== '') out.username = decodeURIComponent(user)
    if (colon >= 0) out.password = decodeURIComponent(auth.slice(colon + 1))
  } catch {
    throw new BadUrl(raw, 'the user or password has a bad %-escape')
  }
  return out
}

/** The query options, checked against the names `kind` accepts. */
function query(raw: string, search: string | undefined, accepted: readonly string[]) {
  const out: Record<string, number | string> = {}
  if (search === undefined || search === '?' || search === '') return out
  for (const [name, value] of new URLSearchParams(search.slice(1))) {
    if (!accepted.includes(name))
      throw new BadUrl(
        raw,
        `the query option "${name}" is not supported; use ${accepted.join(', ')}, or pass ioredis options as \`redis\``,
      )
    if ((SENTINEL_STRINGS as readonly string[]).includes(name)) {
      out[name] = value
      continue
    }
    const n = Number(value)
    if (!/^\d+$/.test(value) || !Number.isSafeInteger(n))
      throw new BadUrl(raw, `the query option "${name}=${value}" is not a whole number`)
    out[name] = n
  }
  return out
}

function clusterTopology(raw: string, m: RegExpExecArray): ClusterTopology {
  const [, scheme, auth, hosts, path, search] = m
  if (path !== undefined && path !== '/')
    throw new BadUrl(
      raw,
      `the path "${path}" means nothing for a cluster: a Redis Cluster has database 0 only`,
    )
  const nodes = hostList(raw, hosts!, 6379)
  const q = query(raw, search, [...CLUSTER_NUMBERS, ...CONNECTION_NUMBERS])
  const redisOptions: RedisOptions = credentials(raw, auth)
  if (scheme!.toLowerCase() === 'rediss-cluster') redisOptions.tls = {}
  const options: ClusterTopology['options'] = { redisOptions }
  for (const [k, v] of Object.entries(q)) {
    if ((CONNECTION_NUMBERS as readonly string[]).includes(k))
      (redisOptions as Record<string, unknown>)[k] = v
    else (options as unknown as Record<string, unknown>)[k] = v
  }
  return { kind: 'cluster', nodes, options }
}

function sentinelTopology(raw: string, m: RegExpExecArray): SingleTopology {
  const [, , auth, hosts, path, search] = m
  const sentinels = hostList(raw, hosts!, 26379)
  const parts = (path ?? '').split('/').slice(1)
  // A trailing slash (`/<master name>/`) names no database: the default, as on one server.
  if (parts.length === 2 && parts[1] === '') parts.pop()
  if (parts.length === 0 || parts[0] === '')
    throw new BadUrl(
      raw,
      'the master name is missing: write redis-sentinel://host:26379/<master name>[/db]',
    )
  if (parts.length > 2 || (parts.length === 2 && !/^\d+$/.test(parts[1]!)))
    throw new BadUrl(
      raw,
      `the database "${parts.slice(1).join('/')}" is not an integer (use /<master name>/0, /1, …)`,
    )
  let name: string
  try {
    name = decodeURIComponent(parts[0]!)
  } catch {
    throw new BadUrl(raw, 'the master name has a bad %-escape')
  }
  const q = query(raw, search, [...CONNECTION_NUMBERS, ...SENTINEL_STRINGS])
  const options: RedisOptions = {
    ...credentials(raw, auth),
    sentinels,
    name,
    db: parts.length === 2 ? Number(parts[1]) : 0,
    ...q,
  }
  return { kind: 'single', options }
}

/** The topology a backend URL names. Throws BadUrl naming the wrong part. */
export function parseTopology(raw: string): Topology {
  const scheme = /^([a-z-]+):/i.exec(raw)?.[1]?.toLowerCase()
  if (scheme === 'redis' || scheme === 'rediss')
    return { kind: 'single', options: parseRedisUrl(raw) }
  const m = SHAPE.exec(raw)
  if (!m)
    throw new BadUrl(
      raw,
      'it is not a URL; expected something like "redis-cluster://host:7000,host:7001" or "redis-sentinel://host:26379/mymaster"',
    )
  if (m[6] !== undefined) throw new BadUrl(raw, 'a #fragment means nothing in a Redis URL')
  if (scheme === 'redis-cluster' || scheme === 'rediss-cluster') return clusterTopology(raw, m)
  if (scheme === 'redis-sentinel') return sentinelTopology(raw, m)
  throw new BadUrl(
    raw,
    `the scheme "${scheme}:" is not a Redis scheme; use redis:, rediss:, redis-cluster:, rediss-cluster: or redis-sentinel:`,
  )
}

/** An ioredis instance, as far as we need one: its options. */
interface HasOptions {
  options: RedisOptions
  duplicate: unknown
}

function isClient(o: object): o is HasOptions {
  return typeof (o as HasOptions).duplicate === 'function' && 'options' in o
}

/**
 * ioredis `Cluster` options: on a cluster URL these keys of `redis` are the cluster's; every
 * other key (`tls`, `password`, `username`, `connectTimeout`, …) is an option of each node
 * connection, as it would be of the one connection on one server.
 */
const CLUSTER_KEYS: ReadonlySet<string> = new Set([
  ...CLUSTER_NUMBERS,
  'clusterRetryStrategy',
  'enableOfflineQueue',
  'enableReadyCheck',
  'scaleReads',
  'shardedSubscribers',
  'useSRVRecords',
  'resolveSrv',
  'natMap',
  'dnsLookup',
  'redisOptions',
  'lazyConnect',
  'enableAutoPipelining',
  'autoPipeliningIgnoredCommands',
  'keyPrefix',
  'showFriendlyErrorStack',
  'scripts',
])

/** Options worq manages itself: `keyPrefix` (the scripts build keys themselves) and pipelining. */
function dropManaged(o: RedisOptions): RedisOptions {
  delete o.keyPrefix
  delete o.enableAutoPipelining
  delete o.lazyConnect
  return o
}

/**
 * Where our connections go and with what options: the URL's, with the `redis` option merged over
 * them (an ioredis instance's own options replace the URL's). On a cluster, the `Cluster` options
 * of `redis` are the cluster's, and its other options (`tls`, `password`, …) and its
 * `redisOptions` are merged over the URL's node options.
 */
export function connectionTopology(raw: string, redis?: object): Topology {
  const fromUrl = parseTopology(raw)
  if (redis !== undefined && (typeof redis !== 'object' || redis === null))
    throw new TypeError(
      'Expected `redis` to be an ioredis options object (Cluster options on a cluster URL) or an ioredis instance',
    )
  if (fromUrl.kind === 'cluster') {
    // A Cluster instance: its own options, as a Redis instance's on one server.
    const given = (redis === undefined ? {} : isClient(redis) ? redis.options : redis) as Record<
      string,
      unknown
    >
    const cluster: Record<string, unknown> = {}
    const node: Record<string, unknown> = {}
    for (const [k, v] of Object.entries(given))
      if (k !== 'redisOptions') (CLUSTER_KEYS.has(k) ? cluster : node)[k] = v
    const extra = cluster as ClusterOptions
    const redisOptions = dropManaged({
      ...fromUrl.options.redisOptions,
      ...(node as RedisOptions),
      ...(given.redisOptions as RedisOptions | undefined),
    })
    const options = { ...fromUrl.options, ...extra, redisOptions }
    delete options.enableAutoPipelining
    delete options.lazyConnect
    return { kind: 'cluster', nodes: fromUrl.nodes, options }
  }
  const merged: RedisOptions =
    redis === undefined
      ? fromUrl.options
      : isClient(redis)
        ? { ...redis.options }
        : { ...fromUrl.options, ...(redis as RedisOptions) }
  return { kind: 'single', options: dropManaged(merged) }
}
