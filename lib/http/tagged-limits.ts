/**
 * Bounds on the work a tagged value (`{ "$superjson": { json, meta } }`) from a request makes:
 * `checkTaggedLimits` before superjson reads it, `checkShared` after, when it has shared
 * references. Reading and writing again are linear in what was sent, except where one request
 * held the event loop for seconds, minutes, or for ever:
 *
 * - a BigInt: reading one takes time quadratic in its digits, and worq writes it twice more (to
 *   enqueue it, to answer): a million digits took 0.9 s. At most MAX_BIGINT_CHARS characters.
 * - a path in `meta`: superjson copies a node's whole path for each of its children, so one long
 *   path with many children is quadratic (a 380 KB body took 111 s). At most MAX_PATH_SEGMENTS
 *   segments: no body nests deeper, so a longer path reaches nothing.
 * - a path that reaches into a Set or a Map: superjson walks to the nth element each time (a 370
 *   KB body of shared references took 1.4 s). A value annotation may not reach through another
 *   annotated value (SuperJSON.serialize never writes one that does: the value's own annotations
 *   say what is inside it), and the shared references walk at most MAX_SET_STEPS elements of Sets
 *   and Maps in all.
 * - a path past the end of an array, where superjson writes (`a[1e9] = …`: a billion holes, which
 *   the next step walks), and a typed array made from a number rather than its items
 *   (`new Float64Array(2e9)`: 16 GB). Neither is what SuperJSON.serialize writes.
 * - shared references, which make a graph of the tree: written out, each shared part is written
 *   each time it appears (nested pairs double the value at each level), and a value that contains
 *   itself sends any walk that does not track what it saw round and round. See checkShared.
 *
 * The paths are read as superjson reads them (its pathstringifier; `meta.v` below 1 is the legacy
 * form), so that the checks see what superjson will do.
 */
import { HttpError, badRequest } from './errors.js'

/** The most characters of a tagged BigInt: 2 048 (a 4 096-bit number has 1 234 digits). */
export const MAX_BIGINT_CHARS = 2048
/** The most segments of a path in a tagged value's `meta` (the body's nesting limit). */
export const MAX_PATH_SEGMENTS = 64
/** The most Set and Map elements the shared references of one tagged value may walk. */
export const MAX_SET_STEPS = 1_000_000
/**
 * How much larger than its json as sent a tagged value with shared references may be when written
 * out in full, each shared part as often as it appears: values, and characters of strings and
 * BigInts.
 */
export const MAX_REPEATED = 1_000_000

/** A trie of annotated paths. */
interface Node {
  /** The annotation's type, when a value here is annotated. */
  type?: unknown
  children: Map<string, Node>
}

const node = (): Node => ({ children: new Map() })

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

/** What one check walks: the value's json, how its paths read, where it is in the request. */
interface Walk {
  json: unknown
  legacy: boolean
  where: string
  /** Every annotated path, to find the Sets and Maps the shared references walk through. */
  annotated: Node
}

/** 400 for a value over one of the limits, naming it. */
function overLimit(message: string): HttpError {
  return badRequest(message, 'ERR_WORQ_HTTP_VALUE_LIMIT')
}

/** 400 for a `meta` superjson would not have written (as values.ts words it). */
function unreadable(w: Walk, why: string): HttpError {
  return badRequest(
    `${w.where} is a tagged value that cannot be read: its "json" and "meta" must be what SuperJSON.serialize(value) returns; this one ${why}`,
  )
}

/** A path of `meta` as superjson's parsePath reads it, at most MAX_PATH_SEGMENTS segments. */
function parsePath(w: Walk, text: unknown, base: readonly string[] = []): string[] {
  if (typeof text !== 'string') throw unreadable(w, 'has a path in "meta" that is not a string')
  const out = [...base]
  let segment = ''
  for (let i = 0; i < text.length; i++) {
    const c = text.charAt(i)
    const next = text.charAt(i + 1)
    if (!w.legacy && c === '\\' && next !== '\\' && next !== '.')
      throw unreadable(w, `has a path in "meta" with a "\\" before ${JSON.stringify(next)}`)
    if (c === '\\' && (next === '.' || (!w.legacy && next === '\\'))) {
      segment += next
      i++
    } else if (c === '.') {
      out.push(segment)
      segment = ''
      if (out.length >= MAX_PATH_SEGMENTS)
        throw overLimit(
          `${w.where} has a path of more than ${MAX_PATH_SEGMENTS} segments in its "meta"; the API reads paths of at most ${MAX_PATH_SEGMENTS} (no body nests deeper)`,
        )
    } else segment += c
  }
  out.push(segment)
  return out
}

/**
 * The plain JSON at `path` of the value's json, or undefined when there is none. In an array (an
 * array, a Set's or a Map's items), a path takes an index of an item: superjson would write past
 * the end (`a[1e9] = …` makes an array of a billion holes, which the next step walks), and read a
 * Set's first item for any key that is not a number.
 */
function reach(w: Walk, path: readonly string[]): unknown {
  let at = w.json
  for (const key of path) {
    if (Array.isArray(at)) {
      if (!/^(0|[1-9]\d{0,8})$/.test(key) || +key >= at.length)
        throw unreadable(
          w,
          `has a path in "meta" ("${path.join('.')}") with ${JSON.stringify(key.slice(0, 20))} where an array has the index of an item`,
        )
      at = at[+key]
    } else if (isObject(at) && Object.hasOwn(at, key)) at = at[key]
    else return undefined
  }
  return at
}

/** Throws unless `v`, read as a BigInt, is a primitive of at most MAX_BIGINT_CHARS characters. */
function checkBigInt(w: Walk, v: unknown, path: readonly string[]): void {
  if (v === undefined || typeof v === 'number' || typeof v === 'boolean') return
  if (typeof v === 'string' && v.length <= MAX_BIGINT_CHARS) return
  // Anything else is read as its text: BigInt(['999…']) is BigInt('999…').
  throw overLimit(
    `${w.where} has a BigInt at "${path.join('.')}" of ${typeof v === 'string' ? `${v.length} characters` : 'another type than a string'}; the API takes BigInts of at most ${MAX_BIGINT_CHARS} characters: send a larger number as a string and convert it in the task`,
  )
}

const NESTED =
  "annotates a value inside another annotated value, not among that one's own annotations ([type, { path: … }])"

/**
 * Claims `rel` in `scope` for an annotated value; a value annotated inside another (not through
 * that one's own children) or twice is refused: superjson would reach it through the other's
 * revived value (a Set: the nth element each time).
 */
function claim(w: Walk, scope: Node, rel: readonly string[]): void {
  let at = scope
  for (const key of rel) {
    if (at.type !== undefined) throw unreadable(w, NESTED)
    let next = at.children.get(key)
    if (!next) at.children.set(key, (next = node()))
    at = next
  }
  if (at.type !== undefined || at.children.size > 0) throw unreadable(w, NESTED)
  at.type = true
}

/** Records the annotation `type` at `path` in `w.annotated` and checks what it reads. */
function visit(w: Walk, type: unknown, path: readonly string[]): void {
  let at = w.annotated
  for (const key of path) {
    let next = at.children.get(key)
    if (!next) at.children.set(key, (next = node()))
    at = next
  }
  at.type = type
  const json = reach(w, path)
  if (type === 'bigint') checkBigInt(w, json, path)
  // `new Float64Array(2e9)` from a number (or a string, or { length }) would allocate 16 GB.
  if (Array.isArray(type) && type[0] === 'typed-array') {
    if (json !== undefined && !Array.isArray(json))
      throw unreadable(w, `has a ${String(type[1])} at "${path.join('.')}" that is not an array`)
  }
}

/** Walks `tree` (meta.values, or part of it) at `full`, `rel` from the start of `scope`. */
function walkValues(
  w: Walk,
  tree: unknown,
  full: readonly string[],
  rel: readonly string[],
  scope: Node,
): void {
  if (Array.isArray(tree)) {
    const [type, children] = tree as [unknown, unknown]
    claim(w, scope, rel)
    if (children !== undefined) {
      if (typeof children !== 'object' || children === null)
        throw unreadable(w, 'has annotations of a value that are not an object')
      const inner = node()
      for (const [key, sub] of Object.entries(children)) {
        const path = parsePath(w, key, full)
        walkValues(w, sub, path, path.slice(full.length), inner)
      }
    }
    visit(w, type, full)
    return
  }
  if (!isObject(tree))
    throw unreadable(w, 'has annotations that are neither an array nor an object')
  for (const [key, sub] of Object.entries(tree)) {
    const path = parsePath(w, key, full)
    walkValues(w, sub, path, [...rel, ...path.slice(full.length)], scope)
  }
}

/** Counts the Set and Map elements superjson walks to reach each path of the shared references. */
function walkReferences(w: Walk, refs: unknown): void {
  let steps = 0
  const count = (text: unknown) => {
    const path = parsePath(w, text)
    reach(w, path)
    let at: Node | undefined = w.annotated
    for (const key of path) {
      if (at?.type === 'set' || at?.type === 'map') steps += +key
      at = at?.children.get(key)
    }
    if (steps > MAX_SET_STEPS)
      throw overLimit(
        `${w.where} has shared references ("referentialEqualities") that reach far into Sets or Maps: the API reads at most ${MAX_SET_STEPS} elements of them in all; send fewer shared references into large Sets and Maps`,
      )
  }
  const countAll = (paths: unknown) => {
    if (!Array.isArray(paths))
      throw unreadable(w, 'has shared references that are not lists of paths')
    for (const p of paths) count(p)
  }
  const countOther = (other: unknown) => {
    if (!isObject(other))
      throw unreadable(w, 'has shared references that are not an object of paths')
    for (const [key, paths] of Object.entries(other)) {
      count(key)
      countAll(paths)
    }
  }
  if (Array.isArray(refs)) {
    countAll(refs[0])
    if (refs[1] !== undefined) countOther(refs[1])
  } else countOther(refs)
}

/**
 * Throws a 400 for a tagged value whose reading would take more than linear time: a BigInt over
 * MAX_BIGINT_CHARS characters, a path over MAX_PATH_SEGMENTS segments, an annotation inside an
 * annotated value, shared references walking more than MAX_SET_STEPS elements of Sets and Maps.
 */
export function checkTaggedLimits(tagged: { json: unknown; meta?: unknown }, where: string): void {
  const { json, meta } = tagged
  if (meta === undefined || meta === null) return
  const w: Walk = { json, legacy: true, where, annotated: node() }
  if (!isObject(meta)) throw unreadable(w, 'has a "meta" that is not an object')
  // superjson: meta.v ?? 0, and paths of a version below 1 in the legacy form.
  w.legacy = Number(meta.v ?? 0) < 1
  if (meta.values) walkValues(w, meta.values, [], [], node())
  if (meta.referentialEqualities) walkReferences(w, meta.referentialEqualities)
}

/**
 * The size of `v` written out when it holds no parts (as its json: a Date's ISO text, a RegExp's
 * "/source/flags", a URL's text, a typed array's items), else undefined.
 */
function leafSize(v: object): number | undefined {
  if (v instanceof Date) return 25
  if (v instanceof RegExp) return 3 + v.source.length + v.flags.length
  if (v instanceof URL) return 1 + v.href.length
  if (ArrayBuffer.isView(v)) return 1 + (v as Uint8Array).length
  return undefined
}

/** The parts of `v` written out with it: items, values, Map keys and values, an Error's texts. */
function partsOf(v: object): unknown[] {
  if (Array.isArray(v)) return v
  if (v instanceof Map) return [...v.keys(), ...v.values()]
  if (v instanceof Set) return [...v]
  if (v instanceof Error) return [v.name, v.message, v.stack, (v as { code?: unknown }).code]
  const proto = Object.getPrototypeOf(v)
  return proto === Object.prototype || proto === null ? Object.values(v) : []
}

/** The size of plain JSON as `checkShared` counts it: a value each, and a string's characters. */
function jsonSize(v: unknown): number {
  if (typeof v === 'string') return 1 + v.length
  if (typeof v !== 'object' || v === null) return 1
  let size = 1
  for (const part of Array.isArray(v) ? v : Object.values(v)) size += jsonSize(part)
  return size
}

/**
 * Throws a 400 for a value superjson read with shared references (`referentialEqualities`) that
 * would cost more than what was sent to write again or to walk. Written out, as JSON.stringify,
 * superjson and a plain-JSON check do, each shared part is written each time it appears: nested
 * pairs of references double the value at each level (2^40 for 40 levels), a long text shared a
 * million times is written a million times. So the value, written out (a value each, a string's
 * or BigInt's characters), may be at most MAX_REPEATED larger than its json as sent (as
 * SuperJSON.serialize writes it, the json holds a copy of each shared part: no larger at all); it
 * may not contain itself (a walk that does not track what it saw goes round it: with two ways
 * round, 2^64 steps to the depth limit); and it may not nest deeper than MAX_PATH_SEGMENTS.
 */
export function checkShared(value: unknown, json: unknown, where: string): void {
  /** Each object seen: its size written out, and how deep it nests. */
  const seen = new Map<object, { size: number; height: number }>()
  const digits = new Map<bigint, number>()
  const open = new Set<object>()
  const visit = (v: unknown, depth: number): { size: number; height: number } => {
    if (typeof v === 'string') return { size: 1 + v.length, height: 0 }
    if (typeof v === 'bigint') {
      let n = digits.get(v)
      if (n === undefined) digits.set(v, (n = String(v).length))
      return { size: 1 + n, height: 0 }
    }
    if (typeof v !== 'object' || v === null) return { size: 1, height: 0 }
    if (open.has(v))
      throw overLimit(
        `${where} contains itself through its shared references ("referentialEqualities"); the API takes no cyclic values`,
      )
    const leaf = leafSize(v)
    if (leaf !== undefined) return { size: leaf, height: 0 }
    let known = seen.get(v)
    if (!known) {
      if (depth >= MAX_PATH_SEGMENTS) throw tooDeep(where)
      open.add(v)
      let size = 1
      let height = 0
      for (const part of partsOf(v)) {
        const p = visit(part, depth + 1)
        size += p.size
        height = Math.max(height, p.height + 1)
      }
      open.delete(v)
      seen.set(v, (known = { size, height }))
    }
    if (depth + known.height > MAX_PATH_SEGMENTS) throw tooDeep(where)
    return known
  }
  if (visit(value, 0).size - jsonSize(json) > MAX_REPEATED)
    throw overLimit(
      `${where} has shared references ("referentialEqualities") that, written out each time they appear, would make it more than ${MAX_REPEATED} values and characters larger than sent; the API takes no more: send fewer shared references to large parts`,
    )
}

function tooDeep(where: string): HttpError {
  return overLimit(
    `${where} nests deeper than ${MAX_PATH_SEGMENTS} levels through its shared references ("referentialEqualities"); the API takes values of at most ${MAX_PATH_SEGMENTS} levels, as bodies`,
  )
}
