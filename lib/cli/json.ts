/**
 * Prints task results as JSON for the shell: Dates as ISO strings, Maps as objects (or entry lists
 * when a key is not a string), Sets as arrays, BigInts as strings, Errors as { name, message },
 * `undefined` as null, and a reference back to an object it is inside of as "[Circular]" (worq
 * carries cyclic values: the serializer keeps referential equality).
 */

/** What a reference to an enclosing object prints as. */
export const CIRCULAR = '[Circular]'

/** `value` as one line of JSON. */
export function toJson(value: unknown): string {
  return JSON.stringify(plain(value === undefined ? null : value, '', new Set())) ?? 'null'
}

/**
 * `v` as a tree JSON.stringify prints as this module says; `inside` holds the objects `v` is
 * inside of (a repeated object that is not one of them is printed again, as JSON has no references).
 */
function plain(v: unknown, key: string, inside: Set<object>): unknown {
  if (typeof v === 'bigint') return v.toString()
  if (typeof v !== 'object' || v === null) return v
  if (inside.has(v)) return CIRCULAR
  inside.add(v)
  try {
    const { toJSON } = v as { toJSON?: unknown }
    const json: unknown = typeof toJSON === 'function' ? toJSON.call(v, key) : v // Dates, Buffers
    if (json !== v) return plain(json, key, inside)
    if (v instanceof Number || v instanceof String || v instanceof Boolean) return v.valueOf()
    if (v instanceof Error) return { name: v.name, message: v.message }
    if (Array.isArray(v) || v instanceof Set)
      return Array.from(v as Iterable<unknown>, (x, i) => plain(x, String(i), inside))
    if (v instanceof Map) {
      const entries = [...(v as Map<unknown, unknown>)]
      return entries.every(([k]) => typeof k === 'string')
        ? Object.fromEntries(entries.map(([k, x]) => [k, plain(x, k as string, inside)]))
        : entries.map(([k, x], i) => [plain(k, '0', inside), plain(x, String(i), inside)])
    }
    return Object.fromEntries(
      Object.keys(v).map(k => [k, plain((v as Record<string, unknown>)[k], k, inside)]),
    )
  } finally {
    inside.delete(v)
  }
}
