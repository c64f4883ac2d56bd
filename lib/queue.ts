/**
 * The Proxy Queue: every property is a namespace or a task name, every call enqueues. Only `then`
 * (so a queue is not mistaken for a promise), `toJSON` (so `JSON.stringify` calls no task) and
 * symbols are not names: it answers `Symbol.asyncDispose`, and `Symbol.toPrimitive` with a
 * description, so that `${q.math}` or `q.math == x` makes no call. A call checks its dotted name
 * as TaskSpace does (once per name), so a name no worker could expose is a TypeError at the call.
 */
import type { Closable, MissingNodeTypes, NodeTypesLoaded } from './ambient.js'
import type { Deferred } from './deferred.js'
import { checkOptions, mergeOptions } from './options.js'
import { checkName, type TaskSpace } from './taskspace.js'
import type { TaskFunction, TaskOptions } from './types.js'

/** What the Proxy needs from its broker. @internal */
export interface QueueHost {
  enqueue(
    path: string,
    args: unknown[],
    defaults: TaskOptions,
    options?: TaskOptions,
  ): Promise<Deferred<unknown> | undefined>
  close(): Promise<void>
}

const kCall = Symbol('worq.call')

/** What a queue function (or a `task()` of one) calls. @internal */
export interface CallInfo {
  host: QueueHost
  path: string
  defaults: TaskOptions
  /** Per-call options, for a function made by `task()`. */
  options?: TaskOptions
}

/** The call a queue function (`q.math.add`) or a `task(q.math.add, options)` makes, if it is one. @internal */
export function callInfo(fn: unknown): CallInfo | undefined {
  if (typeof fn !== 'function') return undefined
  const info = (fn as unknown as Record<symbol, CallInfo | undefined>)[kCall]
  return info && info.path ? info : undefined
}

/**
 * Child Proxies a Proxy keeps (by name), so `q.math.add(1, 2)` in a loop builds no Proxy per call.
 * Past this many names (names built at run time, say) children are built afresh and not kept.
 */
const KEPT_CHILDREN = 1000

/** Builds the Proxy for `path` (`''` for the root). @internal */
export function makeQueue(host: QueueHost, path: string, defaults: TaskOptions): unknown {
  const info: CallInfo = { host, path, defaults }
  const children = new Map<string, unknown>()
  let named = false
  const call = function queue(...args: unknown[]) {
    return host.enqueue(path, args, defaults)
  }
  const describe = (hint: string) => (hint === 'number' ? NaN : `[worq queue ${path || '(root)'}]`)
  return new Proxy(call, {
    get(_target, prop) {
      if (prop === 'then' || prop === 'toJSON') return undefined
      if (prop === kCall) return info
      if (prop === Symbol.asyncDispose) return () => host.close()
      if (prop === Symbol.toPrimitive) return describe
      if (typeof prop === 'symbol') return undefined
      let child = children.get(prop)
      if (child === undefined) {
        child = makeQueue(host, path ? `${path}.${prop}` : prop, defaults)
        if (children.size < KEPT_CHILDREN) children.set(prop, child)
      }
      return child
    },
    apply(_target, _this, args: unknown[]) {
      if (!path)
        throw new TypeError(
          'Expected a task to call, like q.math.add(1, 2); the queue itself is not a task',
        )
      if (!named) named = checkName(path, 'task name') === path
      return host.enqueue(path, args, defaults)
    },
  })
}

/**
 * Per-call options: `task(q.math.add, { id: 'x' })(1, 2)`.
 *
 * @typeParam F - the queue's function, e.g. the type of `q.math.add`.
 */
export function task<F extends (...args: any[]) => Promise<unknown>>(
  queueFn: F,
  options: TaskOptions<any> & { ignoreResult: true },
): (...args: Parameters<F>) => Promise<undefined>
export function task<F extends (...args: any[]) => Promise<unknown>>(
  queueFn: F,
  options: TaskOptions<any>,
): F
export function task(
  queueFn: unknown,
  options: TaskOptions<any>,
): (...args: unknown[]) => Promise<unknown> {
  const info = callInfo(queueFn)
  if (!info) throw new TypeError('Expected `queueFn` to be a task of a queue, like q.math.add')
  checkName(info.path, 'task name')
  const checked = checkOptions(options)
  const merged = info.options ? mergeOptions(info.options, checked) : checked
  const call = (...args: unknown[]) => info.host.enqueue(info.path, args, info.defaults, merged)
  Object.defineProperty(call, kCall, { value: { ...info, options: merged } satisfies CallInfo })
  return call
}

// ---- Types: how TaskSpace definitions flow to the client ----

type Plain<T> = T extends Date | RegExp | Map<any, any> | Set<any> | Error | URL | ArrayBufferView
  ? false
  : true

/** What a parameter accepts at the call site: the value, a Deferred of it, a promise of either, or a structure holding them. */
export type Arg<T> =
  | T
  | Deferred<T>
  | PromiseLike<T | Deferred<T>>
  | (T extends readonly (infer E)[]
      ? Arg<E>[]
      : T extends object
        ? Plain<T> extends true
          ? T extends TaskFunction
            ? never
            : { [K in keyof T]: Arg<T[K]> }
          : never
        : never)

/** A remote function: same parameters (each may be deferred), resolving to a Deferred of the result. */
export type Remote<F> = F extends (...args: infer A) => infer R
  ? (...args: { [I in keyof A]: Arg<A[I]> }) => Promise<Deferred<Awaited<R>>>
  : never

type RemoteMap<Fns> = { [K in keyof Fns]: Remote<Fns[K]> }

type Nest<Path extends string, T> = Path extends ''
  ? T
  : Path extends `${infer Head}.${infer Rest}`
    ? { [K in Head]: Nest<Rest, T> }
    : { [K in Path]: T }

type UnionToIntersection<U> = (U extends unknown ? (u: U) => void : never) extends (
  i: infer I,
) => void
  ? I
  : never

/** The client shape of one space. */
export type SpaceClient<S> = S extends TaskSpace<infer N, infer F> ? Nest<N, RemoteMap<F>> : never

/** An untyped queue: any path, any arguments. */
export interface LooseQueue {
  (...args: any[]): Promise<Deferred<any>>
  readonly [name: string]: LooseQueue
}

type Under<T, Target extends string> = Target extends ''
  ? T
  : Target extends `${infer Head}.${infer Rest}`
    ? Head extends keyof T
      ? Under<T[Head], Rest>
      : LooseQueue
    : Target extends keyof T
      ? T[Target]
      : LooseQueue

/**
 * The client type of a queue serving the spaces `S` (a TaskSpace type, or a union of them), under
 * `Target`. Without `S` the queue is untyped. (In a program that did not load @types/node it is
 * {@link MissingNodeTypes}, a compile error at first use, never `any`.)
 */
export type Queue<S = never, Target extends string = ''> = NodeTypesLoaded extends true
  ? ([S] extends [never] ? LooseQueue : Under<UnionToIntersection<SpaceClient<S>>, Target>) &
      Closable
  : MissingNodeTypes
