/**
 * A call as the backend stores it: its arguments serialized (Deferred arguments as references),
 * its options resolved, and its result-cache key when the arguments are all values.
 */
import { cacheKey, type Backend, type NewTask, type TaskRef } from './backends/backend.js'
import { Deferred, storeOf } from './deferred.js'
import type { ResolvedOptions } from './options.js'
import { encodeCall } from './serializer.js'

/**
 * True when `test` holds for a Deferred in `v` (in arrays and plain objects), visited in order
 * until one passes.
 */
function someDeferred(v: unknown, test: (d: Deferred<unknown>) => boolean, depth = 0): boolean {
  if (v instanceof Deferred) return test(v)
  if (v === null || typeof v !== 'object' || depth > 64) return false
  if (Array.isArray(v)) return v.some(x => someDeferred(x, test, depth + 1))
  const proto = Object.getPrototypeOf(v)
  if (proto !== Object.prototype && proto !== null) return false
  return Object.values(v).some(x => someDeferred(x, test, depth + 1))
}

/** `v` with every settled, completed Deferred replaced by its value. */
function withValues(v: unknown, depth = 0): unknown {
  if (v instanceof Deferred) return v.value
  if (v === null || typeof v !== 'object' || depth > 64) return v
  if (Array.isArray(v)) return v.map(x => withValues(x, depth + 1))
  const proto = Object.getPrototypeOf(v)
  if (proto !== Object.prototype && proto !== null) return v
  const out: Record<string, unknown> = {}
  for (const [k, x] of Object.entries(v)) out[k] = withValues(x, depth + 1)
  return out
}

/** `v` with every pending Deferred replaced by `placeholder(its index in deps)` and every completed one by its value. */
function withPlaceholders(v: unknown, deps: readonly TaskRef[], depth = 0): unknown {
  if (v instanceof Deferred) {
    const i = deps.findIndex(d => d.queue === v.queue && d.id === v.id)
    return i < 0 ? v.value : `\u0001worq:${i}\u0001`
  }
  if (v === null || typeof v !== 'object' || depth > 64) return v
  if (Array.isArray(v)) return v.map(x => withPlaceholders(x, deps, depth + 1))
  const proto = Object.getPrototypeOf(v)
  if (proto !== Object.prototype && proto !== null) return v
  const out: Record<string, unknown> = {}
  for (const [k, x] of Object.entries(v)) out[k] = withPlaceholders(x, deps, depth + 1)
  return out
}

/**
 * The cache key and template of a call (NewTask.cache). Arguments that are all values (a completed
 * Deferred counts by its value) give the key at once, the same as the same call made with the
 * values themselves. With a pending Deferred argument the key is '' (the backend computes it when
 * the task becomes ready) and the template is the arguments' JSON with placeholders for the
 * pending ones, '' when the arguments are not plain JSON.
 */
export function callCacheKey(
  path: string,
  args: readonly unknown[],
  payload: string,
  deps: readonly TaskRef[],
): { key: string; template: string } {
  if (deps.length === 0) {
    if (!someDeferred(args, () => true)) return { key: cacheKey(path, payload), template: '' }
    return { key: cacheKey(path, encodeCall(withValues(args) as unknown[]).payload), template: '' }
  }
  const shaped = withPlaceholders(args, deps)
  const { payload: template, deps: none } = encodeCall(shaped as unknown[])
  return {
    key: '',
    template:
      none.length === 0 && template.startsWith('{"json":') && !template.includes('"meta":')
        ? template
        : '',
  }
}

/** The task a call makes. */
export function encodeTask(
  path: string,
  id: string,
  args: unknown[],
  opts: ResolvedOptions,
  now: number,
): NewTask {
  const { payload, deps } = encodeCall(args)
  return {
    id,
    name: path,
    payload,
    deps,
    onError: opts.onError,
    ignoreResult: opts.ignoreResult,
    resultTimeout: opts.resultTimeout,
    heartrate: opts.heartrate,
    attempts: opts.attempts,
    backoff: opts.backoff,
    runAt: opts.runAt(now),
    timeout: opts.timeout,
    priority: opts.priority,
    metadata: opts.metadata,
    cache:
      opts.cacheTtl === undefined
        ? undefined
        : { ...callCacheKey(path, args, payload, deps), ttl: opts.cacheTtl },
    trace: '',
    idChosen: opts.id !== undefined,
  }
}

/** The kind of store a backend URL names: `memory`, `redis` or `postgres`. */
function family(url: string): string {
  return url.startsWith('memory:') ? 'memory' : url.startsWith('postgres') ? 'postgres' : 'redis'
}

/**
 * Refuses a call whose Deferred argument, not yet completed, belongs to a store that `backend`
 * cannot see: another kind of backend, or another memory:// store. (Two Redis or PostgreSQL URLs
 * may name one server, so those pass; a task the server does not hold then fails its dependent
 * with TaskExpired.) Without this, the dependent failed at once with a TaskExpired saying the
 * argument's result was gone, which named the wrong cause.
 */
export function checkVisible(path: string, args: readonly unknown[], backend: Backend): void {
  someDeferred(args, d => {
    // A completed one goes as its value.
    if (d.outcome?.charAt(0) === 'c') return false
    const store = storeOf(d)
    if (store === backend) return false
    const kind = family(store.url)
    if (kind !== 'memory' && kind === family(backend.url)) return false
    throw new TypeError(
      `An argument of ${path} is a Deferred of ${d.name} (id ${d.id}), a task on ${store.url}, ` +
        `which this call's backend (${backend.url}) cannot see: pass its value (await ` +
        `d.result()) instead, or make both calls through brokers of one backend`,
    )
  })
}
