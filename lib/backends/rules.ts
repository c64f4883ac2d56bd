/**
 * Rules every backend computes the same way: backoff, lease lengths, the stall rule, priorities,
 * limit matching, time buckets of the metrics and the defaults of queue settings. The Redis scripts
 * mirror them in Lua (scripts/common.lua names each mirror).
 */
import { createHash } from 'node:crypto'
import type { Backoff } from '../types.js'
import type { StoredBackoff } from './records.js'
import type { Limit, QueueSettings } from './queue-records.js'

/** Normalises a backoff option for storage. */
export function storedBackoff(backoff: Backoff | undefined): StoredBackoff {
  if (backoff === undefined) return { type: 'fixed', delay: 0, jitter: 0, maxDelay: 0 }
  if (typeof backoff === 'number')
    return { type: 'fixed', delay: Math.ceil(backoff), jitter: 0, maxDelay: 0 }
  return {
    type: backoff.type,
    delay: Math.ceil(backoff.delay),
    jitter: backoff.jitter ?? 0,
    maxDelay: Math.ceil(backoff.maxDelay ?? 0),
  }
}

/**
 * The longest `delay` a task may be given, ms (100 years of 365 days); a retry's backoff is capped
 * there too (an exponential backoff grows past any clock). It keeps every time worq computes from
 * them a valid `Date` and a PostgreSQL `bigint`.
 */
export const MAX_DURATION_MS = 3_153_600_000_000

/**
 * The longest timer a duration option may set, ms (2^31 − 1, about 24.8 days): `resultTimeout`,
 * `heartrate`, `timeout`, the backoff's `delay` and `maxDelay`, `cache.ttl`, a pool's intervals and
 * a wait. Node's timers take no more (a longer one fires at once), and the Redis record keeps
 * these as such timers.
 */
export const MAX_TIMER_MS = 2_147_483_647

/**
 * The delay before attempt `attempt + 1`, given the attempt that just failed. `random` in [0, 1).
 * At most MAX_DURATION_MS.
 */
export function backoffDelay(b: StoredBackoff, attempt: number, random: number): number {
  let ms = b.type === 'exponential' ? b.delay * 2 ** Math.min(attempt - 1, 1000) : b.delay
  if (b.maxDelay > 0) ms = Math.min(ms, b.maxDelay)
  return Math.round(Math.min(ms, MAX_DURATION_MS) * (1 - b.jitter * random))
}

/** The lease grace added to 2 × heartrate, in ms. */
export const LEASE_GRACE_MS = 1000

/**
 * How long sweeping may stop before the next sweep takes lapsed leases for a stall rather than for
 * dead workers: two of its intervals and a second.
 */
export function stallMs(intervalMs: number): number {
  return 2 * intervalMs + 1000
}

/** A lease's length for a heartrate. */
export function leaseMs(heartrate: number): number {
  return 2 * heartrate + LEASE_GRACE_MS
}

/** The range of the `priority` option. */
export const PRIORITY_RANGE = 1_000_000

/**
 * True when a limit named `limit` (a dotted task name, a namespace prefix ending in `.`, or `'*'`)
 * binds the task named `name`.
 */
export function limitBinds(limit: string, name: string): boolean {
  if (limit === '*') return true
  if (limit.endsWith('.')) return name.startsWith(limit)
  return limit === name
}

/**
 * The window a rate limit of `per` ms is kept over: `per` and a margin of a twentieth of it (at most
 * 100 ms). The backends count starts when a worker reserves a task; the function starts a few ms
 * later, by a lag that varies from task to task, and the margin keeps the starts the functions see
 * within the limit too (docs/limits.md). shaping.lua and the PostgreSQL schema (019) do the same.
 */
export function rateWindowMs(per: number): number {
  return per + Math.min(100, Math.ceil(per / 20))
}

/**
 * The limits of a queue as `listLimits` returns them: a record without a prototype, each name an
 * own entry, so that a limit named `__proto__` (a valid task name) is an entry like any other and
 * sets nothing, and a name that is no limit (`constructor`, `toString`) finds nothing.
 */
export function limitRecord(entries: Iterable<readonly [string, Limit]>): Record<string, Limit> {
  const out = Object.create(null) as Record<string, Limit>
  for (const [name, limit] of entries)
    Object.defineProperty(out, name, {
      value: limit,
      enumerable: true,
      writable: true,
      configurable: true,
    })
  return out
}

/** The names of the limits in `limits` that bind task `name`, sorted. */
export function bindingLimits(limits: Readonly<Record<string, Limit>>, name: string): string[] {
  return Object.keys(limits)
    .filter(l => limitBinds(l, name))
    .sort()
}

/**
 * Upper bounds (ms) of the time buckets of the metrics' wait and run histograms: powers of two from
 * 1 ms to about 17 minutes; a last bucket counts everything longer.
 */
export const TIME_BUCKETS_MS: readonly number[] = Array.from({ length: 21 }, (_, i) => 2 ** i)

/** The histogram bucket of a duration: the first whose bound is ≥ ms (the last: over all bounds). */
export function timeBucket(ms: number): number {
  if (ms <= 1) return 0
  const i = Math.ceil(Math.log2(ms))
  return Math.min(i, TIME_BUCKETS_MS.length)
}

/** Queue settings before anyone configured them. */
export const DEFAULT_SETTINGS: Readonly<QueueSettings> = {
  paused: false,
  events: true,
  eventsMax: 10_000,
  metrics: true,
  listing: true,
  cacheSize: 10_000,
  cacheTtl: 3_600_000,
}

/** How long a backend keeps per-minute metrics, in minutes (one day). */
export const METRICS_MINUTES = 1440

/**
 * The result cache's key of a call: SHA-1 (hex) of its name, a newline, and its serialized
 * arguments as values (a Deferred argument by its value). The Redis scripts compute the same with
 * `redis.sha1hex`.
 */
export function cacheKey(name: string, payload: string): string {
  return createHash('sha1').update(name).update('\n').update(payload).digest('hex')
}

/** The placeholder of Deferred argument `i` in a cache template (a JSON string, quotes included). */
export function cachePlaceholder(i: number): string {
  return JSON.stringify(`\u0001worq:${i}\u0001`)
}

/**
 * The plain JSON of a completed outcome's value (`c{"json":…}` without superjson meta), or
 * undefined for any other outcome.
 */
export function plainOutcomeJson(outcome: string): string | undefined {
  if (!outcome.startsWith('c{"json":') || !outcome.endsWith('}')) return undefined
  try {
    const doc = JSON.parse(outcome.slice(1)) as Record<string, unknown>
    if ('meta' in doc) return undefined
  } catch {
    return undefined
  }
  return outcome.slice(9, -1)
}

/**
 * The cache key of a task with Deferred arguments once they are all there: its template with each
 * placeholder replaced by its argument's value, keyed as the same call made with those values
 * would be. When that cannot be written (no template: the arguments are not plain JSON; or an
 * argument's value is not), the key is that of its serialized call and argument outcomes, which
 * matches only calls made the same way.
 */
export function readyCacheKey(
  name: string,
  payload: string,
  template: string,
  slots: readonly string[],
): string {
  if (template) {
    let text = template
    let ok = true
    slots.forEach((slot, i) => {
      const json = plainOutcomeJson(slot)
      if (json === undefined) ok = false
      else text = text.split(cachePlaceholder(i)).join(json)
    })
    if (ok) return cacheKey(name, text)
  }
  const h = createHash('sha1').update(name).update('\n').update(payload)
  for (const s of slots) h.update('\n').update(s)
  return h.digest('hex')
}
