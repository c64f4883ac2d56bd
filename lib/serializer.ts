/**
 * Serialization: a private superjson instance (Dates, Maps, Sets, BigInt, undefined, RegExp, URL,
 * typed arrays, Node Buffers and Errors with stack, cause and code survive), Deferred references, and the check
 * that a value survives the trip faithfully (superjson silently drops functions and symbols and
 * turns class instances into plain objects; worq refuses them instead).
 *
 * Nothing here evaluates code from the wire: superjson's class registry is left empty, so the only
 * types revived are the built-in list above and worq's own references.
 */
import { SuperJSON } from 'superjson'
import type { TaskRef } from './backends/backend.js'
import { TaskCancelled, TaskExpired, TaskFailure, type RemoteError } from './errors.js'
import { isResultRef, type ResultRef } from './result-ref.js'

const sj = new SuperJSON()
sj.allowErrorProps('stack', 'code')

/**
 * The deepest nesting a value sent may have: arrays, plain objects, Maps, Sets and Error causes
 * inside each other, counted from the argument (or result) itself. Deeper values are refused with
 * a TypeError before they reach the serializer, whose recursion would overflow the stack somewhere
 * past 900 levels (Maps) to 2 500 (plain objects), less in a deep call stack.
 */
export const MAX_NESTING = 256

/** Keys superjson refuses in what it walks (a prototype-pollution risk). */
const POLLUTING = new Set(['__proto__', 'constructor', 'prototype'])

/** Built-in classes superjson revives faithfully. */
const FAITHFUL: ReadonlyArray<abstract new (...args: any[]) => unknown> = [
  Date,
  Map,
  Set,
  RegExp,
  URL,
  Error,
  ArrayBuffer,
  Int8Array,
  Uint8Array,
  Uint8ClampedArray,
  Int16Array,
  Uint16Array,
  Int32Array,
  Uint32Array,
  Float32Array,
  Float64Array,
  BigInt64Array,
  BigUint64Array,
]

// Node's Buffer (a Uint8Array subclass, which superjson would send under a name it cannot revive)
// travels as base64 and arrives as a Buffer.
sj.registerCustom<Buffer, string>(
  {
    isApplicable: (v): v is Buffer => Buffer.isBuffer(v),
    serialize: b => b.toString('base64'),
    deserialize: text => Buffer.from(text, 'base64'),
  },
  'worq.buffer',
)

/** Wire form of a Deferred argument: an index into the task's `deps`. */
type RefJson = {
  /** Index into `deps`. */
  r?: number
  /** A completed outcome already held by the Deferred, sent inline (no dependency). */
  o?: string
}

let collecting: { deps: TaskRef[]; index: Map<string, number> } | undefined
let resolving: ((index: number) => unknown) | undefined

// A reference revives as the referenced value, not as a Deferred: hence `any`.
sj.registerCustom<any, RefJson>(
  {
    isApplicable: isResultRef,
    serialize(d: ResultRef) {
      if (!collecting)
        throw new TypeError('a Deferred cannot be part of a result; return its value instead')
      const held = d.outcome
      if (held !== undefined && held.charAt(0) === 'c') return { o: held }
      const key = `${d.queue}\u0000${d.id}`
      let r = collecting.index.get(key)
      if (r === undefined) {
        r = collecting.deps.length
        collecting.deps.push({ queue: d.queue, id: d.id })
        collecting.index.set(key, r)
      }
      return { r }
    },
    deserialize(v) {
      if (v.o !== undefined) return sj.parse(v.o.slice(1))
      if (!resolving) throw new TypeError('unexpected Deferred reference outside a task call')
      return resolving(v.r ?? -1)
    },
  },
  'worq.ref',
)

/** Wire form of a TaskFailure passed along as a value (`onError: 'pass'`, or returned by a task). */
interface FailureJson {
  code: string
  taskName: string
  queue: string
  taskId: string
  remote: RemoteError
  attempts: number | null
}

sj.registerCustom<TaskFailure, any>(
  {
    isApplicable: (v): v is TaskFailure => v instanceof TaskFailure,
    serialize: f =>
      sj.serialize({
        code: f.code,
        taskName: f.taskName,
        queue: f.queue,
        taskId: f.taskId,
        remote: f.remote,
        attempts: f.attempts ?? null,
      } satisfies FailureJson) as any,
    deserialize(v) {
      const f = sj.deserialize(v) as FailureJson
      if (f.code === 'ERR_WORQ_TASK_EXPIRED')
        return new TaskExpired(
          f.taskName,
          f.queue,
          f.taskId,
          f.remote.message,
          f.attempts ?? undefined,
        )
      if (f.code === 'ERR_WORQ_TASK_CANCELLED')
        return new TaskCancelled(f.taskName, f.queue, f.taskId)
      return new TaskFailure(f.taskName, f.queue, f.taskId, f.remote, f.attempts ?? undefined)
    },
  },
  'worq.failure',
)

/**
 * True when `v` is plain JSON that superjson would send unchanged (no meta): null, booleans,
 * strings, finite numbers other than -0, dense arrays and plain objects of those. Such values take
 * the fast path: one JSON.stringify in the very format superjson writes, `{"json":…}`.
 */
function isPlainJson(v: unknown, depth: number): boolean {
  switch (typeof v) {
    case 'string':
    case 'boolean':
      return true
    case 'number':
      return Number.isFinite(v) && !Object.is(v, -0)
    case 'object': {
      if (v === null) return true
      if (depth > 64) return false
      if (Array.isArray(v)) {
        for (let i = 0; i < v.length; i++)
          if (!(i in v) || !isPlainJson(v[i], depth + 1)) return false
        return true
      }
      const proto = Object.getPrototypeOf(v)
      if (proto !== Object.prototype && proto !== null) return false
      for (const k in v) {
        if (k === '__proto__' || !isPlainJson((v as Record<string, unknown>)[k], depth + 1))
          return false
      }
      return Object.getOwnPropertySymbols(v).length === 0
    }
    default:
      return false
  }
}

/** superjson.parse, without superjson's deep copy when the text carries no meta. */
function parse(text: string): unknown {
  const doc = JSON.parse(text) as { json: unknown; meta?: unknown }
  return doc.meta === undefined ? doc.json : sj.deserialize(doc as any)
}

/** Serializes a call's arguments; Deferreds become references listed in `deps`. */
export function encodeCall(args: readonly unknown[]): { payload: string; deps: TaskRef[] } {
  if (isPlainJson(args, 0)) return { payload: `{"json":${JSON.stringify(args)}}`, deps: [] }
  checkFaithful(args, 'args', new Set(), -1) // each argument is at depth 0
  collecting = { deps: [], index: new Map() }
  try {
    return { payload: sj.stringify(args), deps: collecting.deps }
  } finally {
    collecting = undefined
  }
}

/** Revives a call's arguments; each reference becomes `resolve(index)`. */
export function decodeCall(payload: string, resolve: (index: number) => unknown): unknown[] {
  resolving = resolve
  try {
    const args = parse(payload)
    if (!Array.isArray(args)) throw new TypeError('task payload is not an argument list')
    return args
  } finally {
    resolving = undefined
  }
}

/** Serializes a value (a result); throws a TypeError naming the first part that would not survive. */
export function encodeValue(value: unknown): string {
  if (isPlainJson(value, 0)) return `{"json":${JSON.stringify(value)}}`
  checkFaithful(value, 'result', new Set())
  return sj.stringify(value)
}

/** Revives a value serialized by `encodeValue`. */
export function decodeValue(text: string): unknown {
  return parse(text)
}

/**
 * Throws a TypeError when `value` holds something superjson would drop or change: a function, a
 * symbol, a Deferred in a result, or an instance of a class other than the faithful built-ins;
 * or when it nests deeper than {@link MAX_NESTING} (`depth` is that of `value`). A Deferred in a
 * call's arguments (`path` starting `args`) is sent as a reference, unless `noRef` is given: then
 * it throws `noRef(path)` (a call stored and sent again, a schedule's, takes values only).
 */
export function checkFaithful(
  value: unknown,
  path: string,
  seen: Set<object>,
  depth = 0,
  noRef?: (path: string) => TypeError,
): void {
  switch (typeof value) {
    case 'function':
      throw new TypeError(`${path} is a function, which cannot be sent; send data instead`)
    case 'symbol':
      throw new TypeError(`${path} is a symbol, which cannot be sent; use a string instead`)
    case 'object':
      break
    default:
      return
  }
  if (value === null || seen.has(value)) return
  if (isResultRef(value)) {
    if (noRef) throw noRef(path)
    if (!path.startsWith('args'))
      throw new TypeError(`${path} is a Deferred; return its value instead`)
    return
  }
  if (depth >= MAX_NESTING && nests(value)) throw tooDeep(path)
  seen.add(value)
  const inner = depth + 1
  if (Array.isArray(value)) {
    // Index by index, stopping at the first hole: a sparse array would arrive with its holes as
    // null (and walking one of length 1e8 takes seconds), so it is refused before any of that.
    for (let i = 0; i < value.length; i++) {
      if (!(i in value))
        throw new TypeError(
          `${path} is a sparse array (index ${i} is a hole, of ${value.length}), whose holes would arrive as null; send a dense array or an object of index → value`,
        )
      checkFaithful(value[i], `${path}[${i}]`, seen, inner, noRef)
    }
  } else if (value instanceof Map) {
    for (const [k, v] of value) {
      checkFaithful(k, `${path}<key>`, seen, inner, noRef)
      checkFaithful(v, `${path}.get(${String(k)})`, seen, inner, noRef)
    }
  } else if (value instanceof Set) {
    for (const v of value) checkFaithful(v, `${path}<member>`, seen, inner, noRef)
  } else if (value instanceof TaskFailure) {
    return
  } else if (value instanceof Error) {
    if (value.cause !== undefined) checkFaithful(value.cause, `${path}.cause`, seen, inner, noRef)
  } else if (
    Buffer.isBuffer(value) ||
    FAITHFUL.some(C => Object.getPrototypeOf(value) === C.prototype)
  ) {
    // Exactly those classes: an instance of a subclass would arrive as its base class, or not at
    // all (superjson revives typed arrays by their constructor's name).
    return
  } else {
    const proto = Object.getPrototypeOf(value)
    if (proto !== Object.prototype && proto !== null) {
      const name = (proto as { constructor?: { name?: string } }).constructor?.name ?? 'unknown'
      throw new TypeError(
        `${path} is an instance of class ${name}, which would arrive as a plain object; send a plain object instead`,
      )
    }
    for (const key of Object.keys(value)) {
      if (POLLUTING.has(key))
        throw new TypeError(
          `${path} has a key "${key}", which cannot be sent with values that are not plain JSON (a Date, a Map, -0, …: the serializer refuses it as a prototype-pollution risk); rename the key`,
        )
      checkFaithful((value as Record<string, unknown>)[key], `${path}.${key}`, seen, inner, noRef)
    }
    for (const sym of Object.getOwnPropertySymbols(value)) {
      if (Object.prototype.propertyIsEnumerable.call(value, sym))
        throw new TypeError(`${path} has a symbol key ${String(sym)}, which cannot be sent`)
    }
  }
}

/** True for the objects that hold values checkFaithful walks (and that count as a level). */
function nests(value: object): boolean {
  if (Array.isArray(value) || value instanceof Map || value instanceof Set) return true
  if (value instanceof Error) return !(value instanceof TaskFailure)
  const proto = Object.getPrototypeOf(value)
  return proto === Object.prototype || proto === null
}

/** The TypeError for a value nested deeper than MAX_NESTING; its path is cut to its start. */
function tooDeep(path: string): TypeError {
  const start = path.length > 40 ? `${path.slice(0, 40)}…` : path
  return new TypeError(
    `${start} is nested more than ${MAX_NESTING} levels deep (arrays, objects, Maps, Sets and Error causes inside each other), the most worq sends; flatten it, or send the deep part as a string (JSON.stringify) and parse it in the task`,
  )
}
