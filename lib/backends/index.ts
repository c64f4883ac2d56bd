/**
 * Opens backends by URL. Brokers with the same URL in one process share one backend instance (and
 * so one set of connections and one result hub); the last `release` closes it.
 */
import { BadUrl } from '../errors.js'
import { ResultHub } from '../results.js'
import { MAX_TIMER_MS, type Backend } from './backend.js'
import { MemoryBackend } from './memory/memory.js'
import { loadPg } from './postgres/pg.js'
import { PostgresBackend } from './postgres/postgres.js'
import { parsePostgresUrl } from './postgres/url.js'
import { loadIoredis } from './redis/ioredis.js'
import { RedisBackend } from './redis/redis.js'
import { parseTopology } from './redis/topology.js'

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
  watchdog?: {
    /** Longest blocking wait, in ms. */
    blockMs?: number
    /** Interval of the PINGs on the command and subscriber connections, in ms. */
    pingMs?: number
    /** How late a BLPOP or PING answer may be before the connection is dropped, in ms. */
    marginMs?: number
  }
  /**
   * Redis only: load worq's Lua once per server as a function library (FUNCTION LOAD, Redis 7+)
   * and call it with FCALL. `false`: send each operation as a script with EVALSHA, which leaves
   * nothing behind on the server but runs the shared helpers again on every call. Servers without
   * functions (Redis 6.2, an ACL that denies FUNCTION) get scripts either way.
   * @default true
   */
  redisFunctions?: boolean
  /**
   * Redis only: how many replicas must have an enqueue or a finish before it is confirmed. Each
   * script call that stores tasks or outcomes is followed by `WAIT <replicas> <replicaTimeoutMs>`
   * on the same connection (on a cluster, the node of the queue's slot); fewer acknowledgements in
   * time fail the call with `ReplicationTimeout`, whose write may still survive a failover (a
   * refused enqueue's task may still run: give calls an `id` to look it up before calling again;
   * a worker pool runs what its exchange reserved and sends its finishes again). Asynchronous
   * replication otherwise loses the writes a failed master had not yet sent on (docs/cluster.md
   * measures how many).
   * @default 0
   */
  replicas?: number
  /**
   * Redis only: how long the `WAIT` of {@link BackendOptions.replicas} may take, in ms.
   * @default 1_000
   */
  replicaTimeoutMs?: number
  /**
   * Redis only, for tests and benchmarks: `split` hands work between queues over in two steps on a
   * single server too, as on a cluster; `sweep` also leaves every second step to the owing queue's
   * sweep, as when the process dies between the steps.
   * @internal
   */
  crossSlot?: 'split' | 'sweep'
  /**
   * How long an operation waits for a server that is away (unreachable, restarting, failing
   * over) before it fails with `BackendUnreachable`, in ms. PostgreSQL: 5 000 by default; Redis:
   * 10 000 by default (a Sentinel set whose failover takes longer wants more).
   */
  connectTimeoutMs?: number
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

type Factory = (raw: string, options: BackendOptions) => Backend | Promise<Backend>

const factories: Record<string, Factory> = {
  'memory:': (raw, o) =>
    new MemoryBackend(raw, { maxPayloadBytes: o.maxPayloadBytes ?? DEFAULT_MAX_PAYLOAD }),
  'redis:': (raw, o) => openRedis(raw, o),
  'rediss:': (raw, o) => openRedis(raw, o),
  'redis-cluster:': (raw, o) => openRedis(raw, o),
  'rediss-cluster:': (raw, o) => openRedis(raw, o),
  'redis-sentinel:': (raw, o) => openRedis(raw, o),
  'postgres:': (raw, o) => openPostgres(raw, o),
  'postgresql:': (raw, o) => openPostgres(raw, o),
}

async function openPostgres(raw: string, o: BackendOptions): Promise<Backend> {
  await loadPg()
  return new PostgresBackend(raw, {
    maxPayloadBytes: o.maxPayloadBytes ?? DEFAULT_MAX_PAYLOAD,
    ...(o.connectTimeoutMs !== undefined && { connectTimeoutMs: o.connectTimeoutMs }),
  })
}

async function openRedis(raw: string, o: BackendOptions): Promise<Backend> {
  const w = o.watchdog ?? {}
  const replicas = checkReplicas(o.replicas, o.replicaTimeoutMs)
  await loadIoredis()
  return new RedisBackend(raw, {
    maxPayloadBytes: o.maxPayloadBytes ?? DEFAULT_MAX_PAYLOAD,
    redis: o.redis,
    functions: o.redisFunctions ?? true,
    replicas,
    ...(o.crossSlot !== undefined && { crossSlot: o.crossSlot }),
    ...(o.connectTimeoutMs !== undefined && { connectTimeoutMs: o.connectTimeoutMs }),
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

/** `replicas` and `replicaTimeoutMs`, checked. */
function checkReplicas(replicas = 0, timeoutMs = 1_000): { count: number; timeoutMs: number } {
  if (!Number.isSafeInteger(replicas) || replicas < 0 || replicas > 1000)
    throw new TypeError(
      `Expected \`replicas\` to be a whole number of replicas from 0 to 1000; got ${String(replicas)}`,
    )
  wholeMs('replicaTimeoutMs', timeoutMs)
  return { count: replicas, timeoutMs }
}

/** Checks a whole number of ms from 1 to a timer's limit (MAX_TIMER_MS: a longer timer fires at once). */
function wholeMs(name: string, v: unknown): void {
  if (!Number.isSafeInteger(v) || (v as number) < 1 || (v as number) > MAX_TIMER_MS)
    throw new TypeError(
      `Expected \`${name}\` to be a whole number of ms from 1 to ${MAX_TIMER_MS}; got ${String(v)}`,
    )
}

/** The options `getBroker` knows. */
const OPTION_KEYS = new Set([
  'maxPayloadBytes',
  'redis',
  'watchdog',
  'redisFunctions',
  'replicas',
  'replicaTimeoutMs',
  'crossSlot',
  'connectTimeoutMs',
])

/** Checks a backend URL; returns its scheme (`memory:`, `redis:`, …). */
export function parseUrl(raw: unknown): string {
  if (typeof raw !== 'string' || raw === '')
    throw new TypeError(
      'Expected `url` to be a backend URL string such as "memory://" or "redis://127.0.0.1:6379/0"',
    )
  const scheme = /^([a-z][a-z0-9+.-]*:)/i.exec(raw)?.[1]?.toLowerCase()
  if (scheme === 'postgres:' || scheme === 'postgresql:') {
    parsePostgresUrl(raw) // names the wrong part (port, schema, parameter)
    return scheme
  }
  if (scheme !== undefined && scheme !== 'memory:' && scheme in factories) {
    parseTopology(raw) // names the wrong part (port, db, master name) precisely
    return scheme
  }
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
      `the scheme "${url.protocol}" is not supported; use memory://, redis://, rediss://, redis-cluster://, rediss-cluster://, redis-sentinel://, postgres:// or postgresql://`,
    )
  return url.protocol
}

/** Opens (or shares) the backend for `url`. @internal */
export async function openBackend(
  raw: string,
  options: BackendOptions = {},
): Promise<BackendHandle> {
  const factory = factories[parseUrl(raw)] as Factory
  const shareable =
    options.redis === undefined &&
    options.watchdog === undefined &&
    options.connectTimeoutMs === undefined
  const k = `${raw}\u0000${options.maxPayloadBytes ?? ''}\u0000${options.replicas ?? 0}\u0000${options.replicaTimeoutMs ?? ''}\u0000${options.crossSlot ?? ''}`
  let pending = shareable ? shared.get(k) : undefined
  if (!pending) {
    pending = Promise.resolve(factory(raw, options)).then(backend => ({
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

/** Checks the URL and options now so that a mistake fails at `getBroker`, not at the first call. */
export function checkUrl(raw: unknown, options: BackendOptions = {}): void {
  parseUrl(raw)
  if (typeof options !== 'object' || options === null || Array.isArray(options))
    throw new TypeError('Expected `options` to be an object of backend options, or left out')
  for (const k of Object.keys(options))
    if (!OPTION_KEYS.has(k))
      throw new TypeError(`Unknown backend option \`${k}\`; known: ${[...OPTION_KEYS].join(', ')}`)
  checkReplicas(options.replicas, options.replicaTimeoutMs)
  if (options.connectTimeoutMs !== undefined) wholeMs('connectTimeoutMs', options.connectTimeoutMs)
  const max = options.maxPayloadBytes
  if (max !== undefined && !(Number.isSafeInteger(max) && max >= 1024))
    throw new TypeError(
      `Expected \`maxPayloadBytes\` to be a whole number of bytes, 1024 or more; got ${String(max)}`,
    )
  const w = options.watchdog
  if (w !== undefined) {
    if (typeof w !== 'object' || w === null)
      throw new TypeError('Expected `watchdog` to be { blockMs?, pingMs?, marginMs? } (ms each)')
    for (const [k, v] of Object.entries(w)) {
      if (k !== 'blockMs' && k !== 'pingMs' && k !== 'marginMs')
        throw new TypeError(`Unknown \`watchdog\` field \`${k}\`; known: blockMs, pingMs, marginMs`)
      if (v !== undefined && !(Number.isSafeInteger(v) && v >= 100 && v <= MAX_TIMER_MS))
        throw new TypeError(
          `Expected \`watchdog.${k}\` to be a whole number of ms from 100 to ${MAX_TIMER_MS}; got ${String(v)}`,
        )
    }
  }
  if (options.redisFunctions !== undefined && typeof options.redisFunctions !== 'boolean')
    throw new TypeError('Expected `redisFunctions` to be true or false')
  if (options.redis !== undefined && (typeof options.redis !== 'object' || options.redis === null))
    throw new TypeError('Expected `redis` to be an ioredis options object or an ioredis instance')
}
