/**
 * Task values (arguments, results, progress) as the API carries them: plain JSON as it is, and
 * anything else superjson carries (Date, Map, Set, BigInt, undefined in an array, Errors…) tagged
 * as `{ "$superjson": { json, meta } }`. A plain object with a `$superjson` key is tagged too, so a
 * reader never mistakes one for the other. A private superjson instance: worq/http touches no
 * shared state.
 */
import { SuperJSON } from 'superjson'
import type { JsonValue, WireValue } from './types.js'
import { badRequest } from './errors.js'
import { checkShared, checkTaggedLimits } from './tagged-limits.js'

const sj = new SuperJSON()
sj.allowErrorProps('stack', 'code')

/** Deepest nesting the API reads or writes as plain JSON. */
const MAX_DEPTH = 64

/** True when `v` is JSON that round-trips through JSON.stringify unchanged, and not tag-shaped. */
function isPlainJson(v: unknown, depth: number): v is JsonValue {
  switch (typeof v) {
    case 'string':
    case 'boolean':
      return true
    case 'number':
      return Number.isFinite(v) && !Object.is(v, -0)
    case 'object': {
      if (v === null) return true
      if (depth > MAX_DEPTH) return false
      if (Array.isArray(v)) {
        for (let i = 0; i < v.length; i++)
          if (!(i in v) || !isPlainJson(v[i], depth + 1)) return false
        return true
      }
      const proto = Object.getPrototypeOf(v)
      if (proto !== Object.prototype && proto !== null) return false
      for (const k of Object.keys(v)) {
        if (k === '$superjson' || k === '__proto__') return false
        if (!isPlainJson((v as Record<string, unknown>)[k], depth + 1)) return false
      }
      return true
    }
    default:
      return false
  }
}

/** `v` for the API: itself when plain JSON, else tagged (undefined too). */
export function toWire(v: unknown): WireValue {
  if (isPlainJson(v, 0)) return v
  const { json, meta } = sj.serialize(v) as { json: JsonValue; meta?: JsonValue }
  return { $superjson: meta === undefined ? { json } : { json, meta } }
}

/** True when `v` has the shape of a tagged value. */
function isTagged(v: unknown): v is { $superjson: { json: unknown; meta?: unknown } } {
  if (typeof v !== 'object' || v === null || Array.isArray(v) || !('$superjson' in v)) return false
  const keys = Object.keys(v)
  const inner = (v as { $superjson: unknown }).$superjson
  return (
    keys.length === 1 &&
    typeof inner === 'object' &&
    inner !== null &&
    !Array.isArray(inner) &&
    Object.keys(inner).every(k => k === 'json' || k === 'meta') &&
    'json' in inner
  )
}

/**
 * A value from a request: tagged values revived (top-level only; within the limits of
 * tagged-limits.ts), plain JSON as it is.
 */
export function fromWire(v: unknown, where: string): unknown {
  if (typeof v === 'object' && v !== null && !Array.isArray(v) && '$superjson' in v) {
    if (!isTagged(v))
      throw badRequest(
        `${where} has a "$superjson" key but is not a tagged value { "$superjson": { "json": …, "meta"?: … } }`,
      )
    // Before superjson reads it: its reading of some values is quadratic (tagged-limits.ts).
    checkTaggedLimits(v.$superjson, where)
    let value: unknown
    try {
      value = sj.deserialize(v.$superjson as never)
    } catch {
      // Not superjson's own message: it tells of its internals (a stack overflow, a method that
      // is not a function), not of the request.
      throw badRequest(
        `${where} is a tagged value that cannot be read: its "json" and "meta" must be what SuperJSON.serialize(value) returns`,
      )
    }
    // Shared references make a graph of the tree: one that writing or walking it would unfold.
    const meta = v.$superjson.meta as { referentialEqualities?: unknown } | undefined
    if (meta?.referentialEqualities) checkShared(value, v.$superjson.json, where)
    return value
  }
  return v
}
