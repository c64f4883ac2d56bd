/**
 * Queue settings on Redis: hash `conf` (conf() in scripts/common.lua reads it with the same
 * defaults, DEFAULT_SETTINGS of rules.ts). Booleans are '1'/'0'; `lim` holds the limits.
 */
import { DEFAULT_SETTINGS, limitRecord, type Limit, type QueueSettings } from '../backend.js'
import { readableLimit } from '../queue-records.js'

/** Settings from the `conf` hash. */
export function settingsOf(h: Record<string, string>): QueueSettings {
  const bool = (f: string, d: boolean) => (h[f] === undefined ? d : h[f] === '1')
  const num = (f: string, d: number) => (h[f] === undefined ? d : Number(h[f]) || d)
  return {
    paused: h.paused === '1',
    events: bool('events', DEFAULT_SETTINGS.events),
    eventsMax: num('evmax', DEFAULT_SETTINGS.eventsMax),
    metrics: bool('metrics', DEFAULT_SETTINGS.metrics),
    listing: bool('listing', DEFAULT_SETTINGS.listing),
    cacheSize: num('csize', DEFAULT_SETTINGS.cacheSize),
    cacheTtl: num('cttl', DEFAULT_SETTINGS.cacheTtl),
  }
}

/** Settings from configure.lua's reply: the `conf` hash, flat (field, value, …). */
export function settingsOfFlat(flat: readonly string[]): QueueSettings {
  const h: Record<string, string> = {}
  for (let i = 0; i + 1 < flat.length; i += 2) h[flat[i]!] = flat[i + 1]!
  return settingsOf(h)
}

/** The `conf` fields and values of a settings patch. */
export function settingsFields(patch: Partial<Omit<QueueSettings, 'paused'>>): string[] {
  const out: string[] = []
  const b = (v: boolean) => (v ? '1' : '0')
  if (patch.events !== undefined) out.push('events', b(patch.events))
  if (patch.metrics !== undefined) out.push('metrics', b(patch.metrics))
  if (patch.listing !== undefined) out.push('listing', b(patch.listing))
  if (patch.eventsMax !== undefined) out.push('evmax', String(patch.eventsMax))
  if (patch.cacheSize !== undefined) out.push('csize', String(patch.cacheSize))
  if (patch.cacheTtl !== undefined) out.push('cttl', String(patch.cacheTtl))
  return out
}

/** A limit as limit.lua stores it in `lim` (JSON `{ c, r: [max, per] }`), or '' to remove it. */
export function limitSpec(limit: Limit | null): string {
  return limit === null
    ? ''
    : JSON.stringify({
        ...(limit.concurrency !== undefined && { c: limit.concurrency }),
        ...(limit.rate !== undefined && { r: [limit.rate.max, limit.rate.per] }),
      })
}

/** The limits in the `conf` hash's `lim` field (null or absent: none), by name (limitRecord). */
export function limitsOf(lim: string | null | undefined): Record<string, Limit> {
  if (!lim) return limitRecord([])
  // JSON.parse keeps a "__proto__" key as an own entry; limitRecord keeps it one (an assignment
  // `out[name] = …` set the result's prototype instead).
  let stored: unknown
  try {
    stored = JSON.parse(lim)
  } catch {
    return limitRecord([]) // written by something other than worq: no limit reads from it
  }
  if (typeof stored !== 'object' || stored === null || Array.isArray(stored)) return limitRecord([])
  const limits: Array<readonly [string, Limit]> = []
  for (const [name, spec] of Object.entries(stored as Record<string, unknown>)) {
    const { c, r } = (spec ?? {}) as { c?: unknown; r?: unknown }
    const l: Record<string, unknown> = {}
    if (c !== undefined) l.concurrency = c
    // The scripts read a rate as [max, per] alone (common.lua): anything else is no rate.
    if (r !== undefined) l.rate = Array.isArray(r) ? { max: r[0], per: r[1] } : null
    // One that does not read as a limit binds nothing (the scripts skip it too: common.lua).
    if (readableLimit(l)) limits.push([name, l])
  }
  return limitRecord(limits)
}
