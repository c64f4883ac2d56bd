/**
 * The connections of one RedisBackend: a command connection (scripts), a subscriber connection
 * (outcome delivery, made on first `listen`), and one blocking connection per queue a worker waits
 * on (made on first wait). Their number does not grow with the number of tasks or Deferreds. On a
 * Redis Cluster each is an ioredis `Cluster`, which opens a socket to a node when a command first
 * goes there and follows MOVED and ASK; behind Sentinel each asks the sentinels for the master.
 */
import type { Cluster, Redis, RedisOptions } from 'ioredis'
import { ioredis } from './ioredis.js'
import { boundWaits, final, revive, type Connection } from './reach.js'
import type { Topology } from './topology.js'

export type { Connection }

/**
 * A master demoted to a replica (a Sentinel failover, a cluster failover the client missed)
 * refuses writes with READONLY: reconnect (to the master the sentinels or the slots now name) and
 * send the command again. A script refused with READONLY did not run.
 */
function reconnectOnReadonly(err: Error): 2 | false {
  return /^READONLY/.test(err.message) ? 2 : false
}

/**
 * Before a connection is used, ioredis checks with INFO that the server has loaded its data; when
 * an ACL refuses INFO it prints a line (`console.warn`) and goes on as if loaded. The library never
 * prints: here a refused INFO answers that check with an empty reply, which ioredis takes for
 * "loaded" the same way, without the line. worq's own INFO reads (checks.ts) go through `call`,
 * which this leaves alone, and still see the refusal.
 */
function quietReadyCheck(redis: Redis): void {
  type Info = (...args: unknown[]) => Promise<string>
  const info = (redis.info as Info).bind(redis)
  ;(redis as unknown as { info: Info }).info = (...args) => {
    const last = args[args.length - 1]
    const callback =
      typeof last === 'function' ? (args.pop() as (err: unknown, reply?: string) => void) : null
    const reply = info(...args).catch((err: unknown) => {
      if (/NOPERM/.test(String(err))) return ''
      throw err
    })
    if (callback)
      reply.then(
        r => callback(null, r),
        (err: unknown) => callback(err),
      )
    return reply
  }
}

/**
 * What ioredis would print or reject unhandled on a connection of worq's, quietened: its ready
 * check refused by an ACL, a password the server does not need, and its own renewals after a
 * reconnect. A Cluster's node connections get it as ioredis makes them (its `+node` event comes
 * before their first command), and its subscriber connection as ioredis picks it
 * (`quietClusterSubscriber`).
 */
function quietConnection(redis: Redis): void {
  quietReadyCheck(redis)
  quietAuth(redis)
  quietRenewals(redis)
}

/** The commands ioredis sends by itself after a reconnect, with nobody to handle their failure. */
const RENEWALS = ['select', 'subscribe', 'psubscribe', 'ssubscribe'] as const

/**
 * After a reconnect ioredis renews a connection itself: SELECT of its database, and SUBSCRIBE of
 * its channels (autoResubscribe), without a handler for their promises. A connection closed before
 * their replies (worq's close, a watchdog's) rejected them unhandled, which ends a Node process.
 * Each promise of these commands is handled here too; a caller's own call still sees its failure.
 */
function quietRenewals(redis: Redis): void {
  type Send = (...args: unknown[]) => Promise<unknown>
  const commands = redis as unknown as Record<(typeof RENEWALS)[number], Send>
  for (const name of RENEWALS) {
    const send = commands[name].bind(redis)
    commands[name] = (...args) => {
      const reply = send(...args)
      reply.catch(() => undefined)
      return reply
    }
  }
}

/** The server's refusal of a password it does not need (ioredis then goes on, and prints). */
const NO_PASSWORD = /no password is set|without any password configured for the default user/

/**
 * A URL with a password for a server that needs none: ioredis's AUTH at connect is refused, and
 * ioredis prints a line (`console.warn`) and goes on unauthenticated. The library never prints:
 * that refusal is answered as a success here, which ioredis takes the same way, without the line.
 */
function quietAuth(redis: Redis): void {
  type Auth = (...args: unknown[]) => Promise<unknown>
  const auth = (redis.auth as Auth).bind(redis)
  ;(redis as unknown as { auth: Auth }).auth = (...args) => {
    const last = args[args.length - 1]
    if (typeof last !== 'function') return auth(...args)
    const callback = args.pop() as (err: unknown, reply?: unknown) => void
    return auth(...args, (err: Error | null, reply?: unknown) => {
      if (err && NO_PASSWORD.test(err.message)) callback(null, 'OK')
      else callback(err, reply)
    })
  }
}

/**
 * A Cluster subscribes through one connection of ioredis's own (its ClusterSubscriber), made with
 * the ready check always on, anew each time ioredis picks a node for it, with no event that shows
 * it. It is quieted as it is made: the pick (`selectSubscriber`) is wrapped on this Cluster's own
 * subscriber object, before the Cluster starts it; the new connection's socket, and so its check,
 * opens only after the pick returns. Both names are ioredis's internals (5.x), looked for and
 * left alone when absent: that connection's line would then be printed as before.
 */
function quietClusterSubscriber(cluster: Cluster): void {
  interface Picker {
    selectSubscriber?: () => void
    subscriber?: Redis | null
  }
  const picker = (cluster as unknown as { subscriber?: Picker }).subscriber
  const select = picker?.selectSubscriber
  if (!picker || typeof select !== 'function') return
  picker.selectSubscriber = () => {
    select.call(picker)
    if (picker.subscriber) quietConnection(picker.subscriber)
  }
}

/**
 * Behind Sentinel ioredis watches for failovers on connections of its own (its failover detector:
 * one subscribed connection per sentinel, made by its connector's `connectToSentinel`), which
 * reconnect after a minute when a sentinel drops them. Such a connection renewed its SUBSCRIBE
 * with nobody to handle the reply: closed before that reply (worq's close, a failover
 * announced), it rejected unhandled, which ends a Node process; and it had no 'error' listener,
 * so ioredis printed each failed reconnect. Each is quietened as the connector makes it. The
 * names are ioredis's internals (5.x), looked for and left alone when absent.
 */
function quietSentinelWatch(server: Redis): void {
  interface Connector {
    connectToSentinel?: (...args: unknown[]) => Redis
  }
  const connector = (server as unknown as { connector?: Connector }).connector
  const make = connector?.connectToSentinel
  if (!connector || typeof make !== 'function') return
  connector.connectToSentinel = (...args) => {
    const sentinel = make.apply(connector, args)
    quietRenewals(sentinel)
    sentinel.on('error', () => undefined)
    return sentinel
  }
}

/** What a connection is for; it shows as `worq:<role>` in CLIENT LIST. */
export type Role = 'cmd' | 'sub' | 'block' | 'events'

/** How often an idle-or-busy connection proves it is alive, and how long a PING may take. */
export interface Liveness {
  /** ms between PINGs. @default 5_000 */
  pingMs: number
  /** ms a PING may go unanswered before the connection is dropped and reopened. @default 2_000 */
  marginMs: number
}

/**
 * Watches a connection: a PING every `pingMs`; one unanswered for `marginMs` (a half-open socket:
 * the peer went silent without closing) drops the socket, and ioredis reconnects. Without it a
 * command sent on such a socket would wait for the operating system to give up, minutes later.
 */
function watch(redis: Connection, { pingMs, marginMs }: Liveness): void {
  let inFlight = false
  const timer = setInterval(() => {
    if (final(redis)) return clearInterval(timer)
    if (inFlight || redis.status !== 'ready') return
    inFlight = true
    // Dropped only while still connected: a drop while it reconnects would cut that short.
    const deadline = setTimeout(() => {
      if (redis.status === 'ready') redis.disconnect(true)
    }, marginMs)
    redis
      .ping()
      .catch(() => undefined)
      .finally(() => {
        clearTimeout(deadline)
        inFlight = false
      })
  }, pingMs)
  timer.unref()
}

/** How long a caller's command may wait for a server that is away (reach.ts), and its URL. */
export interface Reach {
  url: string
  ms: number
}

/**
 * Opens a connection for `role` to the servers `topology` names. `reach` bounds the waits of the
 * command and subscriber connections' commands for a server that is away.
 */
export function connect(
  topology: Topology,
  role: Role,
  liveness?: Liveness,
  reach?: Reach,
): Connection {
  const base = topology.kind === 'cluster' ? topology.options.redisOptions : topology.options
  const options: RedisOptions = {
    ...base,
    connectionName: `worq:${role}`,
    enableAutoPipelining: false,
    lazyConnect: false,
  }
  if (role !== 'cmd') {
    // Wait for the server however long it is away instead of failing the wait or subscription.
    options.maxRetriesPerRequest = null
  }
  if (role === 'sub') {
    // No INFO ready check on the subscriber: when its socket is dropped and reopened (the
    // watchdog, under load) while a SUBSCRIBE is under way, ioredis sent the check in subscriber
    // mode, and its refusal crashed the process with an unhandled rejection. A subscriber needs
    // no check that the server finished loading: it stores nothing.
    options.enableReadyCheck = false
  }
  if (options.sentinels) {
    options.reconnectOnError ??= reconnectOnReadonly
    options.failoverDetector ??= true
  }
  let redis: Connection
  if (topology.kind === 'cluster') {
    const { redisOptions: _, ...cluster } = topology.options
    options.reconnectOnError ??= reconnectOnReadonly
    redis = new (ioredis().Cluster)(topology.nodes, {
      // Patience through a failover (a master is declared dead after the cluster's node timeout,
      // then a replica is elected) and a resharding of a queue's slot (TRYAGAIN, see Scripts):
      // about 13 s of retries before a call fails.
      maxRedirections: 64,
      retryDelayOnFailover: 200,
      retryDelayOnClusterDown: 200,
      retryDelayOnTryAgain: 100,
      ...cluster,
      // Every operation writes: the masters serve them all.
      scaleReads: 'master',
      enableAutoPipelining: false,
      lazyConnect: false,
      redisOptions: options,
    })
    redis.on('+node', (node: Redis) => quietConnection(node))
    quietClusterSubscriber(redis)
  } else {
    const server = new (ioredis().Redis)(options)
    // Before any reply: the ready check runs once the socket connects, after this returns.
    quietConnection(server)
    if (options.sentinels) quietSentinelWatch(server)
    redis = server
  }
  // ioredis prints unhandled 'error' events; reconnects are handled, and failed commands reject.
  redis.on('error', () => undefined)
  if (liveness && role !== 'block') watch(redis, liveness)
  revive(redis)
  if (reach && (role === 'cmd' || role === 'sub')) boundWaits(redis, reach.url, reach.ms)
  return redis
}

/**
 * Closes a connection: QUIT when idle and connected, then `disconnect()` in every case. Through
 * Sentinel ioredis ends its failover detector (one subscribed connection per sentinel) only in
 * `disconnect()`: after a QUIT alone those connections stayed open, and reconnected for as long
 * as the process lived once the sentinels went away.
 */
export async function disconnect(redis: Connection, graceful: boolean): Promise<void> {
  if (graceful && redis.status === 'ready') {
    await redis.quit().catch(() => undefined)
  }
  redis.disconnect()
}
