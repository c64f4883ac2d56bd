/**
 * Calling the application's listeners where their failure must not reach the library: a Deferred's
 * progress listeners and an EventStream's listeners (a pool's listeners go through its
 * TypedEmitter, which reports the same failures as `pool:error`).
 */

/**
 * Calls `listener(arg)`. What it throws, and the rejection of a promise (any thenable) it
 * returns, are dropped: an `async` listener that throws must neither stop the caller nor become an
 * unhandled rejection, which ends a Node process. Never throws.
 */
export function callListener<A>(listener: (arg: A) => unknown, arg: A): void {
  try {
    const returned = listener(arg)
    if (returned !== null && (typeof returned === 'object' || typeof returned === 'function')) {
      const then = (returned as PromiseLike<unknown>).then
      if (typeof then === 'function') then.call(returned, undefined, dropped)
    }
  } catch {
    // A listener's failure is its own; the others still hear, and the caller goes on.
  }
}

function dropped(): void {}
