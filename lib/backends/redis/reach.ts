/**
 * A bound on how long an operation waits for a Redis server that is away. ioredis keeps commands
 * made while its connection is down in an offline queue and sends them once it is back, however
 * long that takes: a call on a server that never answers (a wrong port, a server down) waited
 * without end. On a connection given a bound, a command made while the connection is not ready
 * waits here instead, at most `ms`: sent as soon as the connection is ready, or failed with
 * BackendUnreachable and never sent (so no call runs after its caller was told it failed).
 * Commands in flight when a connection drops are ioredis's: resent once it is back, or failed
 * after its retries (`maxRetriesPerRequest`), which reach the caller as BackendUnreachable too.
 * And a connection that ioredis ended without worq asking is opened again ({@link revive}).
 */
import type { Cluster, Redis } from 'ioredis'
import { AuthFailed, BackendUnreachable, BrokerClosed } from '../../errors.js'
import { hasPassword } from '../../redact-url.js'

/** A connection: to one server (or the master Sentinel names), or to a Redis Cluster. */
export type Connection = Redis | Cluster

/** What the bound needs of an ioredis command. */
interface Command {
  reject(err: Error): void
  promise: Promise<unknown>
}

interface Held {
  args: unknown[]
  timer: NodeJS.Timeout
}

/** Statuses in which ioredis takes a command at once (or in its handshake, or to refuse it). */
const TAKES = new Set(['ready', 'connect', 'end', 'wait', 'monitoring'])

/** ioredis's error when a command outlived its retries over reconnects. */
const OUT_OF_RETRIES = /max retries per request/i
/** ioredis's refusal of a command on a connection that has ended. */
const ENDED = /^Connection is closed/

/**
 * The server's refusal of the connection's credentials: a wrong password or user (`WRONGPASS`;
 * `ERR invalid password` before Redis 6), or none given where one is needed (`NOAUTH`).
 */
const AUTH_REFUSED = /^(WRONGPASS|NOAUTH)\b|^ERR invalid (password|username-password)/

/**
 * ioredis's report that no sentinel gave the master's address, when the last one refused the
 * sentinels' own password (`sentinelPassword`): that refusal, which the report holds as text only.
 */
const SENTINELS_REFUSED =
  /^All sentinels are unreachable\b.*? Last error: ((?:WRONGPASS|NOAUTH)\b.*)$/s

/**
 * The AuthFailed of `err` when it is the server's refusal of the credentials, else undefined. A
 * Cluster that could ask no node for its slots fails with ClusterAllFailedError, whose
 * `lastNodeError` says why the last node it tried failed: that refusal is the cause then. Behind
 * Sentinel, the sentinels' refusal of their own password is one too.
 */
export function authFailed(url: string, err: unknown): AuthFailed | undefined {
  const last = (err as { lastNodeError?: unknown } | undefined)?.lastNodeError
  if (last) err = last
  const message = String((err as Error | undefined)?.message ?? '')
  const sentinels = SENTINELS_REFUSED.exec(message)?.[1]
  if (sentinels !== undefined) return sentinelsRefused(url, sentinels, err)
  if (!AUTH_REFUSED.test(message)) return undefined
  // The URL's shape as the caller wrote it: a Cluster's seed nodes, or one server.
  const shape = /^rediss?-cluster:/.test(url)
    ? { scheme: 'redis-cluster', rest: 'host:port,host:port' }
    : { scheme: 'redis', rest: 'host:port/db' }
  // NOAUTH where the URL gives a password: its AUTH was refused, and a command the connection sent
  // on was answered NOAUTH before the refusal was read (seen under load): the password is wrong,
  // not missing.
  const fix =
    message.startsWith('NOAUTH') && !hasPassword(url)
      ? `the server needs a password: put it in the URL (${shape.scheme}://:password@${shape.rest}, or ${shape.scheme}://user:password@… for an ACL user) or in the \`redis\` options`
      : `check the user and password in the URL (${shape.scheme}://user:password@${shape.rest}, or ${shape.scheme}://:password@… for the default user) or in the \`redis\` options, and that the user is enabled (ACL SETUSER <user> on)`
  return new AuthFailed(url, message.replace(/\.$/, ''), fix, { cause: err })
}

/** The AuthFailed of the sentinels' `reply` refusing their password; `err` is ioredis's report. */
function sentinelsRefused(url: string, reply: string, err: unknown): AuthFailed {
  const where = "in the URL's query (redis-sentinel://host:port,…/<master>?sentinelPassword=…"
  const fix = reply.startsWith('NOAUTH')
    ? `the sentinels need a password: put it ${where}, and sentinelUsername=… for an ACL user) or in the \`redis\` options; the URL's user and password are the data nodes'`
    : `check sentinelPassword (and sentinelUsername) ${where}) or in the \`redis\` options, and that the user is enabled on the sentinels; the URL's user and password are the data nodes'`
  return new AuthFailed(url, `the sentinels: ${reply.replace(/\.$/, '')}`, fix, { cause: err })
}

/** Connections worq closed (`disconnect()` without reconnecting): their end is final. */
const closed = new WeakSet<Connection>()

/** ms before an ended connection is opened again, growing to 2 s while it keeps failing. */
const REVIVE_MS = 100

/**
 * Opens a connection again when ioredis ended it without worq asking. ioredis ends a connection
 * for good when its connector fails while it reconnects: behind Sentinel, a drop asked for while
 * it asks the sentinels for the master (its failover detector drops it when a failover is
 * announced) ended it, and every later command failed at once with "Connection is closed".
 */
export function revive(redis: Connection): void {
  const disconnect = redis.disconnect.bind(redis)
  redis.disconnect = (reconnect = false) => {
    if (!reconnect) closed.add(redis)
    const waiting = !reconnect && !redis.isCluster && redis.status === 'reconnecting'
    disconnect(reconnect)
    if (waiting) end(redis)
  }
  // A Cluster reconnects its nodes itself, and ends only when closed.
  if (redis.isCluster) return
  let attempts = 0
  redis.on('ready', () => (attempts = 0))
  redis.on('end', () => {
    if (closed.has(redis)) return
    attempts++
    setTimeout(
      () => {
        if (!closed.has(redis) && redis.status === 'end')
          void redis.connect().catch(() => undefined)
      },
      Math.min(REVIVE_MS * attempts, 2000),
    ).unref()
  })
}

/** ioredis's own text for a command refused by a closed connection. */
const CLOSED = 'Connection is closed.'

/**
 * Ends a connection closed while ioredis waited to reconnect it (status `reconnecting`). ioredis's
 * `disconnect()` then only clears its reconnect timer: its socket is gone already, so nothing else
 * happens, and the connection stayed `reconnecting` for good with the commands it was to send
 * again unsettled. A pool stopping behind Sentinel after its connections were killed waited for
 * its exchange forever once its broker had closed. Here it ends as ioredis ends a connection
 * closed while connected (`close()` in its event_handler.js): status `end`, its commands refused.
 * Both names are ioredis's internals (5.x), looked for and left alone when absent.
 */
function end(redis: Connection): void {
  const own = redis as unknown as {
    flushQueue?: (err: Error) => void
    setStatus?: (s: string) => void
  }
  if (redis.status !== 'reconnecting') return
  if (typeof own.flushQueue !== 'function' || typeof own.setStatus !== 'function') return
  own.setStatus('end')
  own.flushQueue(new Error(CLOSED))
}

/** Whether `redis` has ended for good: closed by worq, or a Cluster that ended. */
export function final(redis: Connection): boolean {
  return redis.status === 'end' && (closed.has(redis) || redis.isCluster)
}

/** The BackendUnreachable maker of each bounded connection, and the URL it names. */
const bounds = new WeakMap<object, { unreachable: (cause: unknown) => Error; url: string }>()

/**
 * `err` as the caller should see it: BackendUnreachable when it is ioredis's end of retries on a
 * bounded connection (a command in flight when the connection dropped), AuthFailed when it is a
 * server's refusal of the credentials (a Cluster that is ready sends a command to a node that
 * refuses them: ioredis rejects it with the node's reply), else `err` itself.
 */
export function told(redis: Connection, err: unknown): unknown {
  const bound = bounds.get(redis)
  if (!bound) return err
  return OUT_OF_RETRIES.test(String((err as Error | undefined)?.message))
    ? bound.unreachable(err)
    : (authFailed(bound.url, err) ?? err)
}

/**
 * Bounds waits on `redis` to `ms` (see above); `url` names the server in the error. The last
 * reason the connection gave (a refused or timed-out connect) is the error's cause.
 */
export function boundWaits(redis: Connection, url: string, ms: number): void {
  const send = redis.sendCommand.bind(redis) as (...args: unknown[]) => unknown
  const held = new Set<Held>()
  let reason: Error | undefined
  /** Set while the server refuses the credentials (until the connection is ready). */
  let refused: AuthFailed | undefined
  const unreachable = (cause: unknown) =>
    refused ??
    new BackendUnreachable(
      url,
      `no answer within ${ms} ms (connectTimeoutMs)${cause ? `: ${String((cause as Error).message ?? cause)}` : ''}`,
      { cause },
    )
  bounds.set(redis, { unreachable, url })
  /** Sends what waited, in the order it was made (on 'end', ioredis refuses it). */
  const release = () => {
    for (const h of held) clearTimeout(h.timer)
    const waited = [...held]
    held.clear()
    for (const h of waited) {
      translate(h.args[0] as Command, redis, unreachable, url)
      send(...h.args)
    }
  }
  redis.on('error', (err: Error) => {
    reason = err
    // Credentials refused: waiting will not help (ioredis keeps trying, and a server given the
    // password meanwhile is used from its next connect). What waits fails now, saying so.
    // (ioredis emits its handshake's AUTH refusal as translated below: already an AuthFailed.)
    refused = err instanceof AuthFailed ? err : authFailed(url, err)
    if (!refused) return
    for (const h of held) {
      clearTimeout(h.timer)
      ;(h.args[0] as Command).reject(refused)
    }
    held.clear()
  })
  // ioredis emits these a tick after the status changed: a command made in between sends what
  // waited first (below), so the order of a caller's commands holds.
  redis.on('ready', () => {
    reason = undefined
    refused = undefined
    release()
  })
  // An end that is not final: revive() opens it again, and what waits goes then.
  redis.on('end', () => {
    if (final(redis)) release()
  })
  ;(redis as { sendCommand: (...args: unknown[]) => unknown }).sendCommand = (
    ...args: unknown[]
  ) => {
    const command = args[0] as Command
    if (redis.status === 'ready') {
      if (held.size > 0) release()
      return send(...args)
    }
    if (TAKES.has(redis.status) && (redis.status !== 'end' || final(redis))) {
      // In the handshake: ioredis queues it, and should the connection drop before it is sent,
      // ends its retries with MaxRetriesPerRequestError, told as BackendUnreachable. (Not done on
      // the hot path above: replacing a command's reject there slowed a lone call's p99.)
      translate(command, redis, unreachable, url)
      return send(...args)
    }
    if (refused) {
      command.reject(refused)
      return command.promise
    }
    const h: Held = {
      args,
      timer: setTimeout(() => {
        held.delete(h)
        command.reject(unreachable(reason))
      }, ms),
    }
    h.timer.unref()
    held.add(h)
    return command.promise
  }
}

/**
 * Rejects `command` with BackendUnreachable where ioredis would reject it out of retries, with
 * BrokerClosed where it would because worq closed the connection (a call made as its broker
 * closed, before the connection was ready), and with AuthFailed where the server refused the
 * connection's credentials in its handshake (ioredis fails what it queued with that refusal).
 */
function translate(
  command: Command,
  redis: Connection,
  unreachable: (cause: unknown) => Error,
  url: string,
): void {
  const reject = command.reject.bind(command)
  command.reject = (err: Error) => {
    const message = String(err?.message)
    if (OUT_OF_RETRIES.test(message)) return reject(unreachable(err))
    if (ENDED.test(message) && closed.has(redis)) return reject(new BrokerClosed())
    reject(authFailed(url, err) ?? err)
  }
}
