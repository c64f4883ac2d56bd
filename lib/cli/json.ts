/**
 * Prints task results as JSON for the shell: Dates as ISO strings, Maps as objects (or entry lists
 * when a key is not a string), Sets as arrays, BigInts as strings, Errors as { name, message },
 * `undefined` as null.
 */

/** `value` as one line of JSON. */
export function toJson(value: unknown): string {
  return JSON.stringify(value === undefined ? null : value, (_key, v: unknown) => {
    if (typeof v === 'bigint') return v.toString()
    if (v instanceof Map)
      return [...v.keys()].every(k => typeof k === 'string') ? Object.fromEntries(v) : [...v]
    if (v instanceof Set) return [...v]
    if (v instanceof Error) return { name: v.name, message: v.message }
    return v
  })
}
