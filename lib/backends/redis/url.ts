/**
 * Parses `redis://[user:pass@]host[:port][/db]` and `rediss://…` (TLS) into ioredis options (the
 * cluster and sentinel URLs are read in topology.ts). What a
 * URL cannot say (TLS certificates, sentinels, timeouts) comes from the `redis` option: an options
 * object merged over the URL's, or an ioredis instance whose options our connections copy.
 */
import type { RedisOptions } from 'ioredis'
import { BadUrl } from '../../errors.js'

/** ioredis options for a `redis://` or `rediss://` URL. Throws BadUrl naming the wrong part. */
export function parseRedisUrl(raw: string): RedisOptions {
  const port = /^rediss?:\/\/(?:[^@/]*@)?(?:\[[^\]]*\]|[^:/?#]*)(?::([^/?#]*))?/.exec(raw)?.[1]
  if (port !== undefined && port !== '') {
    const n = Number(port)
    if (!/^\d+$/.test(port) || n < 1 || n > 65535)
      throw new BadUrl(raw, `the port "${port}" is not a number from 1 to 65535`)
  }
  let url: URL
  try {
    url = new URL(raw)
  } catch {
    throw new BadUrl(raw, 'it is not a URL; expected something like "redis://host:6379/0"')
  }
  if (url.protocol !== 'redis:' && url.protocol !== 'rediss:')
    throw new BadUrl(raw, `the scheme "${url.protocol}" is not redis: or rediss:`)
  if (url.search !== '')
    throw new BadUrl(raw, 'query parameters are not supported; pass ioredis options as `redis`')
  if (url.hash !== '') throw new BadUrl(raw, 'a #fragment means nothing in a Redis URL')
  const path = url.pathname.replace(/^\//, '')
  if (path !== '' && !/^\d+$/.test(path))
    throw new BadUrl(
      raw,
      `the database "${decodeURIComponent(path)}" is not an integer (use /0, /1, …)`,
    )
  const options: RedisOptions = {
    host: url.hostname.replace(/^\[(.*)\]$/, '$1') || '127.0.0.1',
    port: url.port ? Number(url.port) : 6379,
    db: path === '' ? 0 : Number(path),
  }
  if (url.username) options.username = decodeURIComponent(url.username)
  if (url.password) options.password = decodeURIComponent(url.password)
  if (url.protocol === 'rediss:') options.tls = {}
  return options
}
