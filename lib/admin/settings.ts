/**
 * Queue settings (docs/settings.md): checked before they are stored in the backend.
 */
import type { QueueSettings } from '../backends/backend.js'

type Patch = Partial<Omit<QueueSettings, 'paused'>>

const BOOLEANS = ['events', 'metrics', 'listing'] as const
const COUNTS = { eventsMax: 100, cacheSize: 1 } as const

/** Checks a settings patch; a TypeError names a bad field. */
export function checkSettings(patch: unknown): Patch {
  if (typeof patch !== 'object' || patch === null || Array.isArray(patch))
    throw new TypeError('Expected settings like { events: true, listing: true }')
  const o = patch as Record<string, unknown>
  const out: Patch = {}
  for (const [k, v] of Object.entries(o)) {
    if ((BOOLEANS as readonly string[]).includes(k)) {
      if (typeof v !== 'boolean')
        throw new TypeError(`Expected \`${k}\` to be a boolean, got ${String(v)}`)
      ;(out as Record<string, unknown>)[k] = v
    } else if (k in COUNTS) {
      const min = COUNTS[k as keyof typeof COUNTS]
      if (!Number.isInteger(v) || (v as number) < min || (v as number) > 10_000_000)
        throw new TypeError(
          `Expected \`${k}\` to be an integer from ${min} to 10000000, got ${String(v)}`,
        )
      ;(out as Record<string, unknown>)[k] = v
    } else if (k === 'cacheTtl') {
      if (!Number.isInteger(v) || (v as number) < 1 || (v as number) > 2_147_483_647)
        throw new TypeError(
          `Expected \`cacheTtl\` to be a whole number of ms ≥ 1, got ${String(v)}`,
        )
      out.cacheTtl = v as number
    } else if (k === 'paused') {
      throw new TypeError(
        '`paused` is not a setting to configure: use broker.pause() and broker.resume()',
      )
    } else {
      throw new TypeError(
        `Unknown setting \`${k}\`; known: ${[...BOOLEANS, ...Object.keys(COUNTS), 'cacheTtl'].join(', ')}`,
      )
    }
  }
  return out
}
