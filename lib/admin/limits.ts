/**
 * Limits across all workers of a queue (docs/limits.md): checking a limit's name and shape.
 */
import { MAX_TIMER_MS, type Limit } from '../backends/backend.js'

const NAME = /^(\*|[A-Za-z_$][\w$-]*(\.[A-Za-z_$][\w$-]*)*\.?)$/

/** Checks a limit's name: a dotted task name, a namespace prefix ending in `.`, or `'*'`. */
export function checkLimitName(name: unknown): string {
  if (typeof name !== 'string' || !NAME.test(name))
    throw new TypeError(
      `Expected the limit's \`name\` to be a dotted task name ("reports.build"), a prefix ending in "." ("reports.") or "*" for the whole queue, got ${JSON.stringify(name)}`,
    )
  return name
}

function whole(name: string, v: unknown, min: number, max: number): number {
  if (!Number.isInteger(v) || (v as number) < min || (v as number) > max)
    throw new TypeError(
      `Expected \`${name}\` to be an integer from ${min} to ${max}, got ${String(v)}`,
    )
  return v as number
}

/** The largest concurrency or rate a limit may set (a backend's integer). */
const MAX_COUNT = 1_000_000_000

/** Checks a limit: `{ concurrency?, rate?: { max, per } }`, at least one of them. */
export function checkLimit(limit: unknown): Limit {
  if (typeof limit !== 'object' || limit === null || Array.isArray(limit))
    throw new TypeError('Expected the limit to be { concurrency?, rate?: { max, per } }, or null')
  const o = limit as Record<string, unknown>
  for (const k of Object.keys(o))
    if (k !== 'concurrency' && k !== 'rate')
      throw new TypeError(`Unknown limit field \`${k}\`; known: concurrency, rate`)
  const out: Limit = {}
  if (o.concurrency !== undefined)
    out.concurrency = whole('concurrency', o.concurrency, 1, MAX_COUNT)
  if (o.rate !== undefined) {
    const r = o.rate as Record<string, unknown>
    if (typeof r !== 'object' || r === null || Object.keys(r).some(k => k !== 'max' && k !== 'per'))
      throw new TypeError('Expected `rate` to be { max: <starts>, per: <ms> }')
    out.rate = {
      max: whole('rate.max', r.max, 1, MAX_COUNT),
      per: whole('rate.per', r.per, 1, MAX_TIMER_MS),
    }
  }
  if (out.concurrency === undefined && out.rate === undefined)
    throw new TypeError('Expected the limit to set `concurrency`, `rate` or both (null removes it)')
  return out
}
