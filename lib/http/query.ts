/**
 * Query strings, read strictly: each route names the parameters it takes; an unknown or repeated
 * parameter, percent-encoding that is not UTF-8, a control character or an overlong value is a
 * 400 that says which. The typed readers below check each value and name it in their errors.
 */
import { badRequest } from './errors.js'

/** Longest value a parameter may have. */
const MAX_VALUE = 2048

/** True when `s` has a control character (U+0000–U+001F or U+007F). */
export function hasControlChar(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (c < 0x20 || c === 0x7f) return true
  }
  return false
}

/** A parsed query: parameter → value. */
export type Query = ReadonlyMap<string, string>

function decode(part: string, what: string): string {
  try {
    return decodeURIComponent(part.replace(/\+/g, ' '))
  } catch {
    throw badRequest(
      `the query's ${what} is not valid percent-encoded UTF-8: ${JSON.stringify(part.slice(0, 64))}`,
      'ERR_WORQ_HTTP_BAD_QUERY',
    )
  }
}

/**
 * Parses `search` (the text after `?`), allowing only `allowed` parameters, each with a value at
 * most once; a parameter with an empty value is left out of the result.
 */
export function parseQuery(search: string, allowed: readonly string[]): Query {
  const query = new Map<string, string>()
  for (const part of search.split('&')) {
    if (part === '') continue
    const eq = part.indexOf('=')
    const key = decode(eq < 0 ? part : part.slice(0, eq), 'parameter name')
    const value = eq < 0 ? '' : decode(part.slice(eq + 1), `value of ${JSON.stringify(key)}`)
    if (!allowed.includes(key))
      throw badRequest(
        `unknown query parameter ${JSON.stringify(key.slice(0, 64))}; this route takes ${allowed.length ? allowed.join(', ') : 'none'}`,
        'ERR_WORQ_HTTP_BAD_QUERY',
      )
    // An empty value (`?queue=&status=`, as a form sends an empty field) is the parameter left
    // out, wherever it comes: `?limit=&limit=2` and `?limit=2&limit=` both give limit 2.
    if (value === '') continue
    if (query.has(key))
      throw badRequest(`the query parameter ${key} is given twice`, 'ERR_WORQ_HTTP_BAD_QUERY')
    if (value.length > MAX_VALUE || hasControlChar(value))
      throw badRequest(
        `the query parameter ${key} is longer than ${MAX_VALUE} characters or has a control character`,
        'ERR_WORQ_HTTP_BAD_QUERY',
      )
    query.set(key, value)
  }
  return query
}

/** An integer parameter from `min` to `max`, or undefined when absent. */
export function intParam(q: Query, key: string, min: number, max: number): number | undefined {
  const raw = q.get(key)
  if (raw === undefined) return undefined
  const n = /^-?\d{1,16}$/.test(raw) ? Number(raw) : NaN
  if (!Number.isSafeInteger(n) || n < min || n > max)
    throw badRequest(
      `Expected the query parameter ${key} to be an integer from ${min} to ${max}, got ${JSON.stringify(raw.slice(0, 64))}`,
    )
  return n
}

/** An ISO date: a day, optionally a time (hh:mm, seconds, a fraction) and a zone. */
const ISO_DATE =
  /^(\d{4})-(\d\d)-(\d\d)(?:T(\d\d):(\d\d)(?::(\d\d)(?:\.\d{1,9})?)?(?:Z|[+-](\d\d):(\d\d))?)?$/

/**
 * `raw` as a Date when it is an ISO date that exists: `new Date()` rolls an impossible one over
 * (2026-02-30 is March 2, 24:00 the next day), so each field is checked against its range first.
 */
function isoDate(raw: string): Date | undefined {
  const m = ISO_DATE.exec(raw)
  if (!m) return undefined
  const [year, month, day, hour = 0, minute = 0, second = 0, zoneHour = 0, zoneMinute = 0] = m
    .slice(1)
    .map(f => (f === undefined ? undefined : Number(f)))
  const leap = year! % 4 === 0 && (year! % 100 !== 0 || year! % 400 === 0)
  const days = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month! - 1]
  if (days === undefined || day! < 1 || day! > days) return undefined
  if (hour > 23 || minute > 59 || second > 59 || zoneHour > 23 || zoneMinute > 59) return undefined
  const date = new Date(raw)
  return Number.isFinite(date.getTime()) ? date : undefined
}

/** An age (ms, a number ≥ 0) or an ISO date parameter, or undefined when absent. */
export function ageParam(q: Query, key: string): number | Date | undefined {
  const raw = q.get(key)
  if (raw === undefined) return undefined
  if (/^\d{1,15}$/.test(raw)) return Number(raw)
  const date = isoDate(raw)
  if (!date)
    throw badRequest(
      `Expected the query parameter ${key} to be an age in ms or an ISO date that exists, like 2026-01-31T12:00:00Z, got ${JSON.stringify(raw.slice(0, 64))}`,
    )
  return date
}

/** The task statuses, in their order of life. */
export const STATUSES = [
  'pending',
  'enqueued',
  'processing',
  'completed',
  'failed',
  'expired',
  'cancelled',
] as const

/** A status parameter: one status or several, comma-separated. */
export function statusParam(q: Query, key: string): (typeof STATUSES)[number][] | undefined {
  const raw = q.get(key)
  if (raw === undefined) return undefined
  const list = raw.split(',')
  if (!list.every(s => (STATUSES as readonly string[]).includes(s)))
    throw badRequest(
      `Expected the query parameter ${key} to be one of ${STATUSES.join(', ')}, or several of them comma-separated, got ${JSON.stringify(raw.slice(0, 64))}`,
    )
  return list as (typeof STATUSES)[number][]
}

/** A dotted task name (`math.add`), or with `prefix` also a namespace ending in `.` (`math.`). */
export const TASK_NAME = /^[A-Za-z_$][\w$-]*(\.[A-Za-z_$][\w$-]*)*$/

/** A task name parameter, exact or a prefix ending in `.`. */
export function nameParam(q: Query, key: string): string | undefined {
  const raw = q.get(key)
  if (raw === undefined) return undefined
  if (raw.length > 256 || !TASK_NAME.test(raw.endsWith('.') ? raw.slice(0, -1) : raw))
    throw badRequest(
      `Expected the query parameter ${key} to be a dotted task name ("math.add") or a prefix ending in "." ("math."), got ${JSON.stringify(raw.slice(0, 64))}`,
    )
  return raw
}
