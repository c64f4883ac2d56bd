/**
 * Resolves the promises in a call's arguments before it is enqueued: promises anywhere in arrays
 * and plain objects are awaited (a rejected one rejects the call; nothing is enqueued). A call
 * with no promise in it resolves synchronously, so the calls of one tick share one round trip.
 */
import { Deferred } from './deferred.js'
import { MAX_NESTING } from './serializer.js'

/** True for a promise or any object with a `then` method. @internal */
export function isThenable(v: unknown): v is PromiseLike<unknown> {
  return (
    v !== null &&
    (typeof v === 'object' || typeof v === 'function') &&
    typeof (v as { then?: unknown }).then === 'function'
  )
}

function isPlain(v: object): boolean {
  const proto = Object.getPrototypeOf(v)
  return proto === Object.prototype || proto === null
}

/**
 * True when `v` holds a promise. The walk stops below MAX_NESTING levels: a value nested deeper is
 * refused by the encoding that follows (a TypeError that names the limit), not by a stack overflow.
 */
function hasThenable(v: unknown, seen: Set<object>, depth: number): boolean {
  if (isThenable(v)) return true
  if (v === null || typeof v !== 'object' || v instanceof Deferred || seen.has(v)) return false
  if (depth > MAX_NESTING) return false
  seen.add(v)
  if (Array.isArray(v)) return v.some(x => hasThenable(x, seen, depth + 1))
  if (isPlain(v)) return Object.values(v).some(x => hasThenable(x, seen, depth + 1))
  return false
}

/**
 * `v` with its promises awaited: arrays and plain objects are copied, each once (`copies` maps an
 * original to its copy), so that a cycle stays a cycle and a shared object stays shared.
 */
async function resolveDeep(
  v: unknown,
  copies: Map<object, unknown>,
  depth: number,
): Promise<unknown> {
  if (isThenable(v)) return resolveDeep(await v, copies, depth)
  if (v === null || typeof v !== 'object' || v instanceof Deferred) return v
  if (copies.has(v)) return copies.get(v)
  if (depth > MAX_NESTING) return v // too deep: the encoding refuses it
  if (Array.isArray(v)) {
    const out: unknown[] = new Array(v.length)
    copies.set(v, out)
    await Promise.all(
      v.map(async (x, i) => {
        out[i] = await resolveDeep(x, copies, depth + 1)
      }),
    )
    return out
  }
  if (!isPlain(v)) return v
  const out: Record<string, unknown> = {}
  copies.set(v, out)
  await Promise.all(
    Object.keys(v).map(async k => {
      out[k] = await resolveDeep((v as Record<string, unknown>)[k], copies, depth + 1)
    }),
  )
  return out
}

/** The arguments with every promise awaited. */
export function resolveArgs(args: unknown[]): unknown[] | Promise<unknown[]> {
  // Plain values (the common call) hold no promise: no walk.
  if (args.every(a => a === null || (typeof a !== 'object' && typeof a !== 'function'))) return args
  // The argument list is a level above the arguments (at depth 0).
  if (!hasThenable(args, new Set(), -1)) return args
  return resolveDeep(args, new Map(), -1) as Promise<unknown[]>
}
