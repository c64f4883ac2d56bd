/**
 * What a run threw, made into a {@link RemoteError} that can always be sent: a thrown value is
 * anything a task function chose, including objects whose getters, `toString` or prototype
 * traps throw (a hostile Proxy), so every read of it is guarded, and nothing here throws.
 */
import type { RemoteError } from './errors.js'

/** The RemoteError for a thrown value (an Error's class name, message, stack, cause and code). */
export function remoteError(err: unknown): RemoteError {
  try {
    return readError(err)
  } catch (e) {
    return { name: 'NonError', message: `the thrown value cannot be read: ${reason(e)}` }
  }
}

/** What a failed read of a value threw, as text: an Error's message, else the value as text. */
function reason(e: unknown): string {
  try {
    if (e instanceof Error && typeof e.message === 'string') return e.message
  } catch {
    // as text below
  }
  return text(e)
}

function readError(err: unknown): RemoteError {
  if (err instanceof Error) {
    // A subclass that does not set `name` still reports its class name.
    const own = err.name
    const made = err.constructor?.name
    const name =
      typeof own === 'string' && own && own !== 'Error'
        ? own
        : (typeof made === 'string' && made) || 'Error'
    const remote: RemoteError = { name, message: text(err.message) }
    const stack = err.stack
    if (typeof stack === 'string') remote.stack = stack
    if (err.cause !== undefined) remote.cause = err.cause
    const code = (err as { code?: unknown }).code
    if (typeof code === 'string') remote.code = code
    return remote
  }
  return { name: 'NonError', message: text(err) }
}

/**
 * A value as text, never throwing: a string as it is, else its JSON, else `String()`, else its
 * type (an object without `toString`, or one whose conversion throws).
 */
export function text(v: unknown): string {
  if (typeof v === 'string') return v
  try {
    return JSON.stringify(v) ?? String(v)
  } catch {
    try {
      return String(v)
    } catch {
      return `(a value of type ${typeof v} that cannot be turned into text)`
    }
  }
}
