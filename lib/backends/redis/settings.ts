/**
 * Queue settings on Redis: hash `conf` (conf() in scripts/common.lua reads it with the same
 * defaults, DEFAULT_SETTINGS of rules.ts). Booleans are '1'/'0'; `lim` holds the limits.
 */
import { DEFAULT_SETTINGS, type QueueSettings } from '../backend.js'

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
