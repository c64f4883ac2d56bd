/**
 * Parses `redis://[user:pass@]host[:port][/db]` and `rediss://…` (TLS) into ioredis options. What a
 * URL cannot say (TLS certificates, sentinels, timeouts) comes from the `redis` option: an options
 * object merged over the URL's, or an ioredis instance whose options our connections copy.
 */
import type { RedisOptions } from 'ioredis'
import { BadUrl } from '../../errors.js'

/** The URL with its password replaced by `***`. */
export function redactUrl(raw: string): string {
  return raw.replace(/^(\w+:\/\/)([^@/]*)@/, (_m, scheme: string, auth: string) => {
    const colon = auth.indexOf(':')
    return colon < 0 ? `${scheme}${auth}@` : `${scheme}${auth.slice(0, colon)}:***@`
  })
}

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

/** An ioredis instance, as far as we need one: its options. */
interface HasOptions {
  options: RedisOptions
  duplicate: unknown
}

function isClient(o: object): o is HasOptions {
  return typeof (o as HasOptions).duplicate === 'function' && 'options' in o
}

/**
 * The options our connections start from: the URL's, with the `redis` option merged over them (an
 * ioredis instance's own options replace the URL's). Options worq manages itself are dropped:
 * `keyPrefix` (the scripts build keys themselves) and `enableAutoPipelining`.
 */
export function connectionBase(raw: string, redis?: object): RedisOptions {
  const fromUrl = parseRedisUrl(raw)
  if (redis !== undefined && (typeof redis !== 'object' || redis === null))
    throw new TypeError('Expected `redis` to be an ioredis options object or an ioredis instance')
  const merged: RedisOptions =
    redis === undefined
      ? fromUrl
      : isClient(redis)
        ? { ...redis.options }
        : { ...fromUrl, ...(redis as RedisOptions) }
  delete merged.keyPrefix
  delete merged.enableAutoPipelining
  delete merged.lazyConnect
  return merged
}
