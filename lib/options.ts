/**
 * Task options: defaults, merging and validation. Bad options throw a TypeError that
 * names the option and what it expects.
 */
import { randomFillSync } from 'node:crypto'
import {
  MAX_DURATION_MS,
  MAX_TIMER_MS,
  PRIORITY_RANGE,
  storedBackoff,
  type StoredBackoff,
} from './backends/backend.js'
import type { TaskOptions, TransactionClient } from './types.js'

/** The largest `metadata`, as JSON, in bytes. */
export const METADATA_LIMIT = 4096

/** Option defaults. */
export const DEFAULTS = {
  resultTimeout: 3_600_000,
  heartrate: 10_000,
  onError: 'fail' as const,
  attempts: 1,
}

/** Options after defaults and validation. */
export interface ResolvedOptions {
  id: TaskOptions['id']
  ignoreResult: boolean
  resultTimeout: number
  heartrate: number
  onError: 'fail' | 'pass'
  attempts: number
  backoff: StoredBackoff
  /** Epoch ms, or 0. Computed per call. */
  runAt: (now: number) => number
  /** ms, or 0 for no limit. */
  timeout: number
  priority: number
  /** JSON text, or ''. */
  metadata: string
  /** ms a cached result lives (0: the queue's `cacheTtl`), or undefined: no cache. */
  cacheTtl: number | undefined
  /** The caller's transaction to enqueue in (postgres://), or undefined. */
  tx: TransactionClient | undefined
}

const KNOWN = new Set([
  'id',
  'ignoreResult',
  'resultTimeout',
  'heartrate',
  'onError',
  'attempts',
  'backoff',
  'delay',
  'runAt',
  'timeout',
  'priority',
  'metadata',
  'cache',
  'tx',
])

/** The most `attempts` a task may be given. */
export const MAX_ATTEMPTS = 1_000_000

/**
 * Checks a duration in ms, from `min` to `max` (a timer's limit, about 24.8 days, unless the
 * option is a `delay`); fractions are allowed and rounded up where the options are resolved.
 */
function positive(name: string, v: unknown, min = 1, max = MAX_TIMER_MS): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max)
    throw new TypeError(
      `Expected \`${name}\` to be a number from ${min} to ${max} (milliseconds; ${
        max === MAX_TIMER_MS ? 'about 24.8 days' : '100 years'
      }), got ${String(v)}`,
    )
  return v
}

/** Validates a partial options object (defaults or per call). */
export function checkOptions(options: unknown): TaskOptions {
  if (options === undefined) return {}
  if (typeof options !== 'object' || options === null || Array.isArray(options))
    throw new TypeError('Expected `options` to be an object of task options')
  const o = options as Record<string, unknown>
  for (const k of Object.keys(o)) {
    if (!KNOWN.has(k))
      throw new TypeError(
        `Unknown task option \`${k}\`; known options are ${[...KNOWN].join(', ')}`,
      )
  }
  if (o.id !== undefined && typeof o.id !== 'string' && typeof o.id !== 'function')
    throw new TypeError(
      'Expected `id` to be a string or a function of the call arguments that returns one',
    )
  if (typeof o.id === 'string') checkId(o.id)
  if (o.ignoreResult !== undefined && typeof o.ignoreResult !== 'boolean')
    throw new TypeError('Expected `ignoreResult` to be a boolean')
  if (o.resultTimeout !== undefined) positive('resultTimeout', o.resultTimeout)
  if (o.heartrate !== undefined) positive('heartrate', o.heartrate, 10)
  if (o.onError !== undefined && o.onError !== 'fail' && o.onError !== 'pass')
    throw new TypeError(`Expected \`onError\` to be 'fail' or 'pass', got ${String(o.onError)}`)
  if (
    o.attempts !== undefined &&
    (!Number.isInteger(o.attempts) ||
      (o.attempts as number) < 1 ||
      (o.attempts as number) > MAX_ATTEMPTS)
  )
    throw new TypeError(
      `Expected \`attempts\` to be an integer from 1 to ${MAX_ATTEMPTS}, got ${String(o.attempts)}`,
    )
  if (o.backoff !== undefined) checkBackoff(o.backoff)
  if (o.delay !== undefined) positive('delay', o.delay, 0, MAX_DURATION_MS)
  if (o.timeout !== undefined) positive('timeout', o.timeout)
  if (o.runAt !== undefined && !(o.runAt instanceof Date && Number.isFinite(o.runAt.getTime())))
    throw new TypeError('Expected `runAt` to be a valid Date')
  if (o.runAt !== undefined && o.delay !== undefined)
    throw new TypeError(
      'Expected `runAt` or `delay`, got both: give `runAt` (a Date) or `delay` (ms from the call), not both',
    )
  if (o.priority !== undefined) checkPriority(o.priority)
  if (o.metadata !== undefined) metadataText(o.metadata)
  if (o.cache !== undefined) checkCache(o.cache)
  if (
    o.tx !== undefined &&
    (typeof o.tx !== 'object' ||
      o.tx === null ||
      typeof (o.tx as { query?: unknown }).query !== 'function')
  )
    throw new TypeError(
      'Expected `tx` to be a node-postgres client in a transaction (an object with a query method)',
    )
  return o as TaskOptions
}

function checkPriority(p: unknown): void {
  if (!Number.isInteger(p) || Math.abs(p as number) > PRIORITY_RANGE)
    throw new TypeError(
      `Expected \`priority\` to be an integer from -${PRIORITY_RANGE} to ${PRIORITY_RANGE} (lower runs first), got ${String(p)}`,
    )
}

function checkCache(c: unknown): void {
  if (typeof c === 'boolean') return
  if (typeof c === 'object' && c !== null && !Array.isArray(c)) {
    const keys = Object.keys(c)
    if (keys.every(k => k === 'ttl')) {
      positive('cache.ttl', (c as { ttl?: unknown }).ttl)
      return
    }
  }
  throw new TypeError('Expected `cache` to be true, false or { ttl: <ms> }')
}

/** True for JSON data: null, booleans, strings, finite numbers, arrays and plain objects of those. */
function isJson(v: unknown, depth: number): boolean {
  if (v === null || typeof v === 'string' || typeof v === 'boolean') return true
  if (typeof v === 'number') return Number.isFinite(v)
  if (typeof v !== 'object' || depth > 32) return false
  if (Array.isArray(v)) return v.every(x => isJson(x, depth + 1))
  const proto = Object.getPrototypeOf(v)
  if (proto !== Object.prototype && proto !== null) return false
  return Object.values(v).every(x => isJson(x, depth + 1))
}

/** The `metadata` option as JSON text; a TypeError when it is not a plain JSON object or too big. */
export function metadataText(m: unknown): string {
  if (typeof m !== 'object' || m === null || Array.isArray(m) || !isJson(m, 0))
    throw new TypeError(
      'Expected `metadata` to be a plain JSON object (strings, numbers, booleans, null, arrays and plain objects)',
    )
  const text = JSON.stringify(m)
  const bytes = Buffer.byteLength(text)
  if (bytes > METADATA_LIMIT)
    throw new TypeError(
      `Expected \`metadata\` to be at most ${METADATA_LIMIT} bytes as JSON, got ${bytes}; store large data elsewhere and put a reference in metadata`,
    )
  return text
}

function checkBackoff(b: unknown): void {
  if (typeof b === 'number') {
    positive('backoff', b, 0)
    return
  }
  if (typeof b !== 'object' || b === null)
    throw new TypeError("Expected `backoff` to be ms, or { type: 'fixed' | 'exponential', delay }")
  const o = b as Record<string, unknown>
  if (o.type !== 'fixed' && o.type !== 'exponential')
    throw new TypeError(
      `Expected \`backoff.type\` to be 'fixed' or 'exponential', got ${String(o.type)}`,
    )
  positive('backoff.delay', o.delay, 0)
  if (o.jitter !== undefined && !(typeof o.jitter === 'number' && o.jitter >= 0 && o.jitter <= 1))
    throw new TypeError('Expected `backoff.jitter` to be a number from 0 to 1')
  if (o.maxDelay !== undefined) positive('backoff.maxDelay', o.maxDelay, 0)
}

/** Random bytes for task ids, drawn from the system's CSPRNG this many at a time… */
const ID_POOL_BYTES = 16 * 512
/** …and written out as base64url once per draw: 6 random bits a character. */
const ID_POOL_CHARS = Math.floor((ID_POOL_BYTES * 8) / 6)
const ID_LENGTH = 21
let idBytes: Buffer | undefined
let idChars: Buffer | undefined
let idOffset = ID_POOL_CHARS

/**
 * A new task id: 21 random URL-safe characters (126 bits, nanoid's alphabet and size), never
 * starting with `-`, so that it can be given to the `worq` command as it is (a leading dash would
 * read as an option). Cut from one base64url text of a pool of random bytes: nanoid builds its
 * id a character at a time, about 20 strings a call, half of the allocations of an enqueue's
 * encoding on the producer's hot path; and the cut is a string of its own, where a slice of a
 * longer string would keep the longer one alive for as long as the id lives (a Deferred's id
 * lives until its outcome arrives).
 */
export function newTaskId(): string {
  if (idOffset + ID_LENGTH > ID_POOL_CHARS) {
    randomFillSync((idBytes ??= Buffer.allocUnsafe(ID_POOL_BYTES)))
    idChars = Buffer.from(idBytes.toString('base64url'), 'latin1')
    idOffset = 0
  }
  if (idChars![idOffset] === 45) idChars![idOffset] = 95 // '-' → '_'
  return idChars!.toString('latin1', idOffset, (idOffset += ID_LENGTH))
}

/** Checks a task id: 1–256 characters, well-formed Unicode, no control character. */
export function checkId(id: unknown): string {
  if (
    typeof id !== 'string' ||
    id.length === 0 ||
    id.length > 256 ||
    hasControlChar(id) ||
    !wellFormed(id)
  )
    throw new TypeError(
      `Expected the task \`id\` to be a string of 1–256 characters without control characters, got ${JSON.stringify(id)}`,
    )
  return id
}

/**
 * Merges layers of options (queue defaults, then a call's), later wins. `runAt` and `delay` are
 * one setting, when the task may run: a layer that gives either replaces both of the layers
 * before it (a call's `runAt` overrides its queue's default `delay`, and the other way round).
 */
export function mergeOptions(...layers: TaskOptions[]): TaskOptions {
  const o: TaskOptions = Object.assign({}, ...layers)
  for (let i = layers.length - 1; i >= 0; i--) {
    const layer = layers[i]!
    if (layer.runAt === undefined && layer.delay === undefined) continue
    delete o.runAt
    delete o.delay
    if (layer.runAt !== undefined) o.runAt = layer.runAt
    if (layer.delay !== undefined) o.delay = layer.delay
    break
  }
  return o
}

/** Merges defaults and per-call options (`mergeOptions`) and fills in worq's defaults. */
export function resolveOptions(...layers: TaskOptions[]): ResolvedOptions {
  const o = mergeOptions(...layers)
  const runAt = o.runAt?.getTime()
  // Durations are whole ms on every backend (a PostgreSQL bigint, a Redis PX): rounded up.
  const delay = Math.ceil(o.delay ?? 0)
  return {
    id: o.id,
    ignoreResult: o.ignoreResult ?? false,
    resultTimeout: Math.ceil(o.resultTimeout ?? DEFAULTS.resultTimeout),
    heartrate: Math.ceil(o.heartrate ?? DEFAULTS.heartrate),
    onError: o.onError ?? DEFAULTS.onError,
    attempts: o.attempts ?? DEFAULTS.attempts,
    backoff: storedBackoff(o.backoff),
    timeout: Math.ceil(o.timeout ?? 0),
    runAt: runAt !== undefined ? () => runAt : delay > 0 ? now => now + delay : () => 0,
    priority: o.priority ?? 0,
    metadata: o.metadata === undefined ? '' : metadataText(o.metadata),
    cacheTtl:
      o.cache === undefined || o.cache === false
        ? undefined
        : o.cache === true
          ? 0
          : Math.ceil(o.cache.ttl),
    tx: o.tx,
  }
}

/** True when `s` has no lone surrogate (it is valid UTF-16, so it can be sent as UTF-8). */
function wellFormed(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (c < 0xd800 || c > 0xdfff) continue
    const next = s.charCodeAt(i + 1)
    if (c > 0xdbff || !(next >= 0xdc00 && next <= 0xdfff)) return false
    i++
  }
  return true
}

/** True when `s` has a control character: C0, DEL or C1 (Unicode category Cc). */
function hasControlChar(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (c < 0x20 || (c >= 0x7f && c <= 0x9f)) return true
  }
  return false
}
