/**
 * Start-up checks of the Redis server a worker uses: conditions under which worq cannot keep its
 * promises, reported as warnings (the library never prints; a pool emits `pool:warning`).
 */
import type { Redis } from 'ioredis'

/**
 * Warnings about the server: an eviction policy other than `noeviction` lets Redis drop task
 * records, outcomes and queue keys under memory pressure, which loses tasks. Read from INFO, which
 * needs no CONFIG permission (managed Redis often forbids CONFIG).
 */
export async function serverWarnings(cmd: Redis): Promise<string[]> {
  const info = await cmd.info('memory')
  const policy = /^maxmemory_policy:(\S+)/m.exec(info)?.[1]
  if (policy === undefined || policy === 'noeviction') return []
  return [
    `Redis maxmemory-policy is "${policy}": under memory pressure Redis evicts keys, and a queue on an evicting Redis loses tasks and results; set maxmemory-policy noeviction (CONFIG SET maxmemory-policy noeviction, or in redis.conf)`,
  ]
}
