/**
 * Resolves the promises in a call's arguments before it is enqueued: promises anywhere in arrays
 * and plain objects are awaited (a rejected one rejects the call; nothing is enqueued). A call
 * with no promise in it resolves synchronously, so the calls of one tick share one round trip.
 */
import { Deferred } from './deferred.js'

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

function hasThenable(v: unknown, seen: Set<object>): boolean {
  if (isThenable(v)) return true
  if (v === null || typeof v !== 'object' || v instanceof Deferred || seen.has(v)) return false
  seen.add(v)
  if (Array.isArray(v)) return v.some(x => hasThenable(x, seen))
  if (isPlain(v)) return Object.values(v).some(x => hasThenable(x, seen))
  return false
}

/**
 * `v` with its promises awaited: arrays and plain objects are copied, each once (`copies` maps an
 * original to its copy), so that a cycle stays a cycle and a shared object stays shared.
 */
async function resolveDeep(v: unknown, copies: Map<object, unknown>): Promise<unknown> {
  if (isThenable(v)) return resolveDeep(await v, copies)
  if (v === null || typeof v !== 'object' || v instanceof Deferred) return v
  if (copies.has(v)) return copies.get(v)
  if (Array.isArray(v)) {
    const out: unknown[] = new Array(v.length)
    copies.set(v, out)
    await Promise.all(
      v.map(async (x, i) => {
        out[i] = await resolveDeep(x, copies)
      }),
    )
    return out
  }
  if (!isPlain(v)) return v
  const out: Record<string, unknown> = {}
  copies.set(v, out)
  await Promise.all(
    Object.keys(v).map(async k => {
      out[k] = await resolveDeep((v as Record<string, unknown>)[k], copies)
    }),
  )
  return out
}

/** The arguments with every promise awaited. */
export function resolveArgs(args: unknown[]): unknown[] | Promise<unknown[]> {
  // Plain values (the common call) hold no promise: no walk.
  if (args.every(a => a === null || (typeof a !== 'object' && typeof a !== 'function'))) return args
  if (!hasThenable(args, new Set())) return args
  return resolveDeep(args, new Map()) as Promise<unknown[]>
}
