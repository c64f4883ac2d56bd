/**
 * Opens backends by URL. Brokers with the same URL in one process share one backend instance (and
 * so one set of connections and one result hub); the last `release` closes it.
 */
import { BadUrl } from '../errors.js'
import { ResultHub } from '../results.js'
import type { Backend } from './backend.js'
import { MemoryBackend } from './memory/memory.js'
import { RedisBackend } from './redis/redis.js'
import { parseRedisUrl } from './redis/url.js'

/** Options for the backend behind a URL. */
export interface BackendOptions {
  /** Largest serialized call or outcome, in bytes. @default 16 MiB */
  maxPayloadBytes?: number
  /**
   * Redis only: an ioredis options object merged over what the URL says (TLS settings, sentinels,
   * timeouts), or an ioredis instance to duplicate connections from.
   */
  redis?: object
  /**
   * Redis only: how fast a silent connection is noticed. A blocking wait lasts at most `blockMs`;
   * the command and subscriber connections PING every `pingMs`; a BLPOP or PING unanswered for
   * `marginMs` past its due time drops the connection, which then reconnects.
   * @default { blockMs: 5_000, pingMs: 5_000, marginMs: 2_000 }
   */
  watchdog?: { blockMs?: number; pingMs?: number; marginMs?: number }
  /**
   * Redis only: load worq's Lua once per server as a function library (FUNCTION LOAD, Redis 7+)
   * and call it with FCALL. `false`: send each operation as a script with EVALSHA, which leaves
   * nothing behind on the server but runs the shared helpers again on every call. Servers without
   * functions (Redis 6.2, an ACL that denies FUNCTION) get scripts either way.
   * @default true
   */
  redisFunctions?: boolean
}

/** A shared backend. @internal */
export interface BackendHandle {
  backend: Backend
  hub: ResultHub
  release(): Promise<void>
}

interface Entry {
  backend: Backend
  hub: ResultHub
  refs: number
}

const shared = new Map<string, Promise<Entry>>()

/** The default `maxPayloadBytes`. */
export const DEFAULT_MAX_PAYLOAD = 16 * 1024 * 1024

type Factory = (url: URL, raw: string, options: BackendOptions) => Backend | Promise<Backend>

const factories: Record<string, Factory> = {
  'memory:': (_url, raw, o) =>
    new MemoryBackend(raw, { maxPayloadBytes: o.maxPayloadBytes ?? DEFAULT_MAX_PAYLOAD }),
  'redis:': (url, raw, o) => openRedis(url, raw, o),
  'rediss:': (url, raw, o) => openRedis(url, raw, o),
}

function openRedis(url: URL, raw: string, o: BackendOptions): Backend {
  const w = o.watchdog ?? {}
  return new RedisBackend(url, raw, {
    maxPayloadBytes: o.maxPayloadBytes ?? DEFAULT_MAX_PAYLOAD,
    redis: o.redis,
    functions: o.redisFunctions ?? true,
    timing: {
      ...(w.blockMs !== undefined && { blockMs: w.blockMs }),
      ...(w.marginMs !== undefined && { marginMs: w.marginMs }),
    },
    liveness: {
      ...(w.pingMs !== undefined && { pingMs: w.pingMs }),
      ...(w.marginMs !== undefined && { marginMs: w.marginMs }),
    },
  })
}

/** Parses and checks a backend URL. */
export function parseUrl(raw: unknown): URL {
  if (typeof raw !== 'string' || raw === '')
    throw new TypeError(
      'Expected `url` to be a backend URL string such as "memory://" or "redis://127.0.0.1:6379/0"',
    )
  if (/^rediss?:/i.test(raw)) parseRedisUrl(raw) // names the wrong part (port, db) precisely
  let url: URL
  try {
    url = new URL(raw)
  } catch {
    throw new BadUrl(
      raw,
      'it is not a URL; expected something like "memory://" or "redis://host:6379/0"',
    )
  }
  if (!(url.protocol in factories))
    throw new BadUrl(
      raw,
      `the scheme "${url.protocol}" is not supported; use memory://, redis:// or rediss://`,
    )
  if (url.protocol !== 'memory:') parseRedisUrl(raw)
  return url
}

/** Opens (or shares) the backend for `url`. @internal */
export async function openBackend(
  raw: string,
  options: BackendOptions = {},
): Promise<BackendHandle> {
  const url = parseUrl(raw)
  const factory = factories[url.protocol] as Factory
  const shareable = options.redis === undefined && options.watchdog === undefined
  const k = `${raw}\u0000${options.maxPayloadBytes ?? ''}`
  let pending = shareable ? shared.get(k) : undefined
  if (!pending) {
    pending = Promise.resolve(factory(url, raw, options)).then(backend => ({
      backend,
      hub: new ResultHub(backend),
      refs: 0,
    }))
    if (shareable) {
      shared.set(k, pending)
      pending.catch(() => shared.delete(k))
    }
  }
  const mine = pending
  const e = await mine
  e.refs++
  let released = false
  return {
    backend: e.backend,
    hub: e.hub,
    async release() {
      if (released) return
      released = true
      if (--e.refs > 0) return
      if (shared.get(k) === mine) shared.delete(k)
      await e.backend.close()
    },
  }
}

/** Checks the scheme now so a bad URL fails at `getBroker`, not at the first call. */
export function checkUrl(raw: unknown): void {
  parseUrl(raw)
}
