/**
 * The connections of one RedisBackend: a command connection (scripts), a subscriber connection
 * (outcome delivery, made on first `listen`), and one blocking connection per queue a worker waits
 * on (made on first wait). Their number does not grow with the number of tasks or Deferreds.
 */
import { Redis, type RedisOptions } from 'ioredis'

/** What a connection is for; it shows as `worq:<role>` in CLIENT LIST. */
export type Role = 'cmd' | 'sub' | 'block'

/** Opens a connection for `role` from the base options. */
export function connect(base: RedisOptions, role: Role): Redis {
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
