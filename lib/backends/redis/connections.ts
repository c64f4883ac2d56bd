/**
 * The connections of one RedisBackend: a command connection (scripts), a subscriber connection
 * (outcome delivery, made on first `listen`), and one blocking connection per queue a worker waits
 * on (made on first wait). Their number does not grow with the number of tasks or Deferreds.
 */
import { Redis, type RedisOptions } from 'ioredis'

/** What a connection is for; it shows as `worq:<role>` in CLIENT LIST. */
export type Role = 'cmd' | 'sub' | 'block'

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
function watch(redis: Redis, { pingMs, marginMs }: Liveness): void {
  let inFlight = false
  const timer = setInterval(() => {
    if (inFlight || redis.status !== 'ready') return
    inFlight = true
    const deadline = setTimeout(() => redis.disconnect(true), marginMs)
    redis
      .ping()
      .catch(() => undefined)
      .finally(() => {
        clearTimeout(deadline)
        inFlight = false
      })
  }, pingMs)
  timer.unref()
  redis.once('end', () => clearInterval(timer))
}

/** Opens a connection for `role` from the base options. */
export function connect(base: RedisOptions, role: Role, liveness?: Liveness): Redis {
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
  const redis = new Redis(options)
  // ioredis prints unhandled 'error' events; reconnects are handled, and failed commands reject.
  redis.on('error', () => undefined)
  if (liveness && role !== 'block') watch(redis, liveness)
  return redis
}

/** Closes a connection: QUIT when idle and connected, else drops the socket. */
export async function disconnect(redis: Redis, graceful: boolean): Promise<void> {
  if (graceful && redis.status === 'ready') {
    await redis.quit().catch(() => redis.disconnect())
    return
  }
  redis.disconnect()
}
