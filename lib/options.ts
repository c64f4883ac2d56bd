/**
 * Task options: defaults, merging and validation. Bad options throw a TypeError that
 * names the option and what it expects.
 */
import { storedBackoff, type StoredBackoff } from './backends/backend.js'
import type { TaskOptions } from './types.js'

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
])

function positive(name: string, v: unknown, min = 1): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min)
    throw new TypeError(
      `Expected \`${name}\` to be a number ≥ ${min} (milliseconds), got ${String(v)}`,
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
  if (o.attempts !== undefined && (!Number.isInteger(o.attempts) || (o.attempts as number) < 1))
    throw new TypeError(`Expected \`attempts\` to be an integer ≥ 1, got ${String(o.attempts)}`)
  if (o.backoff !== undefined) checkBackoff(o.backoff)
  if (o.delay !== undefined) positive('delay', o.delay, 0)
  if (o.timeout !== undefined) positive('timeout', o.timeout)
  if (o.runAt !== undefined && !(o.runAt instanceof Date && Number.isFinite(o.runAt.getTime())))
    throw new TypeError('Expected `runAt` to be a valid Date')
  return o as TaskOptions
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
  if (o.jitter !== undefined && (typeof o.jitter !== 'number' || o.jitter < 0 || o.jitter > 1))
    throw new TypeError('Expected `backoff.jitter` to be a number from 0 to 1')
  if (o.maxDelay !== undefined) positive('backoff.maxDelay', o.maxDelay, 0)
}

/** Checks a task id. */
export function checkId(id: unknown): string {
  if (typeof id !== 'string' || id.length === 0 || id.length > 256 || hasControlChar(id))
    throw new TypeError(
      `Expected the task \`id\` to be a string of 1–256 characters without control characters, got ${JSON.stringify(id)}`,
    )
  return id
}

/** Merges defaults and per-call options (later wins) and fills in worq's defaults. */
export function resolveOptions(...layers: TaskOptions[]): ResolvedOptions {
  const o: TaskOptions = Object.assign({}, ...layers)
  const runAt = o.runAt?.getTime()
  const delay = o.delay ?? 0
  return {
    id: o.id,
    ignoreResult: o.ignoreResult ?? false,
    resultTimeout: o.resultTimeout ?? DEFAULTS.resultTimeout,
    heartrate: o.heartrate ?? DEFAULTS.heartrate,
    onError: o.onError ?? DEFAULTS.onError,
    attempts: o.attempts ?? DEFAULTS.attempts,
    backoff: storedBackoff(o.backoff),
    timeout: o.timeout ?? 0,
    runAt: runAt !== undefined ? () => runAt : delay > 0 ? now => now + delay : () => 0,
  }
}

function hasControlChar(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) < 0x20) return true
  return false
}
