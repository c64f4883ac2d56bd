/** Formatting helpers for the page. */
import type { WireValue } from '../../lib/http/types.js'

/** A date as local time with seconds, or '—'. */
export function time(iso: string | undefined): string {
  if (!iso) return '—'
  const d = new Date(iso)
  return d.toLocaleString(undefined, { hour12: false })
}

/** ms between two ISO dates, readable; '—' when either is missing. */
export function between(from: string | undefined, to: string | undefined): string {
  if (!from || !to) return '—'
  return duration(new Date(to).getTime() - new Date(from).getTime())
}

/** A duration in ms, readable. */
export function duration(ms: number): string {
  if (ms < 1000) return `${Math.max(0, Math.round(ms))} ms`
  if (ms < 120_000) return `${(ms / 1000).toFixed(1)} s`
  if (ms < 7_200_000) return `${Math.round(ms / 60_000)} min`
  return `${(ms / 3_600_000).toFixed(1)} h`
}

/** True when `v` is a tagged (superjson) value. */
export function isTagged(v: unknown): v is { $superjson: { json: unknown; meta?: unknown } } {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && '$superjson' in v
}

/** The type names a superjson `meta` mentions (Date, map, bigint…). */
function typesIn(meta: unknown, out: Set<string>): Set<string> {
  if (typeof meta === 'string') {
    if (/^[A-Za-z]+$/.test(meta)) out.add(meta)
  } else if (Array.isArray(meta)) meta.forEach(m => typesIn(m, out))
  else if (typeof meta === 'object' && meta !== null)
    for (const v of Object.values(meta)) typesIn(v, out)
  return out
}

/** A value for display: JSON text, and for a tagged value the types JSON could not carry. */
export function show(v: WireValue | undefined): { text: string; types: string[] } {
  if (v === undefined) return { text: 'undefined', types: [] }
  if (isTagged(v)) {
    const meta = (v.$superjson.meta as { values?: unknown } | undefined)?.values
    return {
      text: JSON.stringify(v.$superjson.json, null, 2) ?? 'undefined',
      types: [...typesIn(meta, new Set())],
    }
  }
  return { text: JSON.stringify(v, null, 2), types: [] }
}

/** A progress value as a fraction from 0 to 1, when it reads as one (0.4, 40 of 100, { done, total }). */
export function fraction(v: WireValue | undefined): number | undefined {
  if (typeof v === 'number') return v <= 1 ? Math.max(0, v) : Math.min(1, v / 100)
  if (typeof v === 'object' && v !== null && !Array.isArray(v) && !isTagged(v)) {
    const o = v as Record<string, unknown>
    const done = o.done ?? o.current ?? o.value
    const total = o.total ?? o.of
    if (typeof done === 'number' && typeof total === 'number' && total > 0)
      return Math.min(1, Math.max(0, done / total))
    if (typeof o.percent === 'number') return Math.min(1, Math.max(0, o.percent / 100))
  }
  return undefined
}
