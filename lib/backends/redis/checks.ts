/**
 * Start-up checks of the Redis server a worker uses: conditions under which worq cannot keep its
 * promises, reported as warnings (the library never prints; a pool emits `pool:warning`).
 */
import type { Connection as Redis } from './connections.js'
import { BadUrl, UnsupportedServer } from '../../errors.js'

/** The oldest Redis the scripts run on: `RPOP key count` and `ZRANGE … BYSCORE` came in 6.2. */
export const OLDEST_REDIS = '6.2'

/**
 * Throws UnsupportedServer when INFO's `redis_version` is older than {@link OLDEST_REDIS}. A
 * version it cannot read (a server that reports none) passes: the scripts will tell.
 */
export function checkVersion(info: string): void {
  const version = /^redis_version:(\d+)\.(\d+)\S*/m.exec(info)
  if (!version) return
  const [major, minor] = [Number(version[1]), Number(version[2])]
  const [oldMajor, oldMinor] = OLDEST_REDIS.split('.').map(Number) as [number, number]
  if (major < oldMajor || (major === oldMajor && minor < oldMinor))
    throw new UnsupportedServer(version[0].slice('redis_version:'.length), OLDEST_REDIS)
}

/**
 * Throws BadUrl when the URL's database does not exist on the server (`/99` on a server of 16):
 * ioredis's own SELECT at connect fails without a word, and every command then goes to database
 * 0 (a purge there would empty another application's queue). A user who may not run SELECT (an
 * ACL) is not checked.
 */
async function checkDatabase(cmd: Redis): Promise<void> {
  const { db, host, port } =
    (cmd as { options?: { db?: number; host?: string; port?: number } }).options ?? {}
  if (cmd.isCluster || !db) return
  try {
    await cmd.call('SELECT', db)
  } catch (err) {
    if (/NOPERM/i.test(String(err))) return
    if (/DB index/i.test(String(err)))
      throw new BadUrl(
        `redis://${host ?? ''}:${port ?? ''}/${db}`,
        `database ${db} does not exist on this server (${String(err).replace(/^ReplyError: /, '')}); use one the server has (redis.conf \`databases\`, 16 by default: 0 to 15)`,
      )
    throw err
  }
}

/**
 * Reads the server's version (INFO server) and throws UnsupportedServer when it is too old. A user
 * who may not run INFO (an ACL) is not checked.
 */
export async function checkServer(cmd: Redis): Promise<void> {
  await checkDatabase(cmd)
  let info: string
  try {
    info = (await cmd.call('INFO', 'server')) as string
  } catch (err) {
    if (/NOPERM/i.test(String(err))) return
    throw err
  }
  checkVersion(info)
}

/**
 * Warnings about the server: an eviction policy other than `noeviction` lets Redis drop task
 * records, outcomes and queue keys under memory pressure, which loses tasks. Read from INFO, which
 * needs no CONFIG permission (managed Redis often forbids CONFIG). A user whose ACL denies INFO
 * gets a warning that the policy could not be read, and the pool starts.
 */
export async function serverWarnings(cmd: Redis): Promise<string[]> {
  let info: string
  try {
    info = (await cmd.call('INFO', 'memory')) as string
  } catch (err) {
    if (!/NOPERM/i.test(String(err))) throw err
    return [
      `could not read Redis maxmemory-policy: this user may not run INFO (${String(err).replace(/^ReplyError: /, '')}); a queue on an evicting Redis loses tasks, so check that the policy is noeviction, and allow INFO to this user (docs/redis.md, "A Redis user for worq")`,
    ]
  }
  const policy = /^maxmemory_policy:(\S+)/m.exec(info)?.[1]
  if (policy === undefined || policy === 'noeviction') return []
  return [
    `Redis maxmemory-policy is "${policy}": under memory pressure Redis evicts keys, and a queue on an evicting Redis loses tasks and results; set maxmemory-policy noeviction (CONFIG SET maxmemory-policy noeviction, or in redis.conf)`,
  ]
}
