/**
 * How tasks are laid out in Redis: the record header (decoded by the scripts with cjson) kept apart
 * from the payload (never decoded in Lua), and the reverse for reserved tasks, handovers included;
 * and the messages published on the outcome and control channels. The record format is documented
 * at the top of scripts/common.lua.
 */
import { nanoid } from 'nanoid'
import {
  type ControlMessage,
  type NewTask,
  type ReservedTask,
  type StoredBackoff,
} from '../backend.js'
import type { EnqueueEntry } from './scripts.js'

/** The record header, as JSON (short field names: it is stored once per live task). */
interface Header {
  n: string
  c?: string
  r: number
  i?: 1
  h: number
  a: number
  b: [StoredBackoff['type'], number, number, number]
  d?: Array<[string, string]>
  o?: 'p'
  u: number
  e: number
  g: string
  /** Priority (absent: 0). */
  p?: number
  /** Metadata, as JSON text. */
  m?: string
  /** Cache key ('' = computed by the scripts when the task is ready), its ttl (0 = the queue's) and template. */
  k?: string
  kt?: number
  kp?: string
  /** Trace context. */
  tr?: string
  /** Written by the scripts only: the tag of the token whose finish put the task back for another attempt. */
  f?: string
  /** Any other NewTask field (e.g. `timeout`), carried through as is. */
  x?: Record<string, unknown>
}

/** A duration as Redis and Node timers take it: whole ms, at most 2^31 − 1 (about 24.8 days). */
const ms = (v: number): number => Math.min(Math.ceil(v), 2_147_483_647)

/** Generations: unique per enqueue within this process (a random prefix, then a counter). */
const GEN_PREFIX = nanoid(6)
let genSeq = 0

/**
 * What the headers and metas of a producer's calls share when they have one name and the same
 * options (most do: a queue's defaults), built once and kept for the next call that matches.
 */
interface Shared {
  name: string
  resultTimeout: number
  heartrate: number
  attempts: number
  backoff: StoredBackoff
  ignoreResult: boolean
  client: string
  /** The header up to runAt's value: `{"n":…,"r":…,"h":…,"a":…,"b":[…],"u":`. */
  head: string
  /** Who gets the outcome: `,"c":"<client>"`, or `,"i":1` for an ignoreResult task. */
  who: string
  /** The meta between its flags and the generation: `|<heartrate>|<keep ms>|<client>|`. */
  metaHead: string
  /** The meta's name: `\n<name>|`. */
  metaName: string
  /** The meta's attempts: `|<attempts>|`. */
  metaAttempts: string
}

/** The last Shared built (one entry: calls in a row are mostly alike). */
let shared: Shared | undefined

/** The Shared of `task` for `client`: the last one when it matches, else a new one. */
function sharedOf(task: NewTask, client: string): Shared {
  const s = shared
  const b = task.backoff
  if (
    s !== undefined &&
    s.name === task.name &&
    s.resultTimeout === task.resultTimeout &&
    s.heartrate === task.heartrate &&
    s.attempts === task.attempts &&
    s.ignoreResult === task.ignoreResult &&
    s.client === client &&
    (s.backoff === b ||
      (s.backoff.type === b.type &&
        s.backoff.delay === b.delay &&
        s.backoff.jitter === b.jitter &&
        s.backoff.maxDelay === b.maxDelay))
  )
    return s
  const keep = task.ignoreResult ? 0 : ms(task.resultTimeout)
  return (shared = {
    name: task.name,
    resultTimeout: task.resultTimeout,
    heartrate: task.heartrate,
    attempts: task.attempts,
    backoff: b,
    ignoreResult: task.ignoreResult,
    client,
    head:
      `{"n":${JSON.stringify(task.name)},"r":${ms(task.resultTimeout)},"h":${ms(task.heartrate)},` +
      `"a":${task.attempts},"b":[${JSON.stringify(b.type)},${ms(b.delay)},${b.jitter},${ms(b.maxDelay)}],"u":`,
    who: task.ignoreResult ? ',"i":1' : `,"c":${JSON.stringify(client)}`,
    metaHead: `|${ms(task.heartrate)}|${keep}|${task.ignoreResult ? '' : client}|`,
    metaName: `\n${task.name}|`,
    metaAttempts: `|${task.attempts}|`,
  })
}

/**
 * The enqueue.lua entry of a task; `client` gets its outcome unless it ignores results. The
 * header is written as text (its shape is fixed, and ready.lua reads a plain one by pattern)
 * rather than through an object and JSON.stringify, from the parts the last call of the same name
 * and options left (sharedOf): this runs once per call on the producer's hot path. Everything
 * enqueue.lua needs besides id and runAt it reads from the header, and only when it needs it.
 */
export function encodeTask(task: NewTask, client: string, now: number): EnqueueEntry {
  const gen = GEN_PREFIX + (++genSeq).toString(36)
  const s = sharedOf(task, client)
  let header = `${s.head}${task.runAt},"e":${now},"g":"${gen}"${s.who}`
  let flags = ''
  const pending = task.deps.length > 0
  if (pending) {
    header += `,"d":${JSON.stringify(task.deps.map(d => [d.queue, d.id]))}`
    flags += 's'
  }
  if (task.onError === 'pass') header += ',"o":"p"'
  if (task.timeout) header += `,"x":{"timeout":${ms(task.timeout)}}`
  if (task.cache) {
    header += `,"k":${JSON.stringify(task.cache.key)},"kt":${ms(task.cache.ttl)}`
    if (task.cache.template) header += `,"kp":${JSON.stringify(task.cache.template)}`
    flags += 'k'
  }
  if (task.metadata) {
    header += `,"m":${JSON.stringify(task.metadata)}`
    flags += 'm'
  }
  if (task.priority) {
    header += `,"p":${task.priority}`
    flags += 'q'
  }
  if (task.trace) header += `,"tr":${JSON.stringify(task.trace)}`
  return {
    id: task.id,
    runAt: task.runAt,
    body: `${pending ? 'P' : 'E'}0:${header}}\n${task.payload}`,
    meta: `${flags}${s.metaHead}${gen}${s.metaName}${now}${s.metaAttempts}${task.priority}`,
  }
}

/** A task as its record's header and payload describe it. */
export function decodeRecord(id: string, record: string): NewTask {
  const nl = record.indexOf('\n', record.indexOf(':'))
  return fromHeader(id, record, nl, headerOf(record, nl))
}

/**
 * What a plain header (no field past the caller's) shares with the next of the same name and
 * options: its text up to runAt's value, the fields of that part as parsed, and its text after the
 * generation. Most tasks a worker reserves are alike, so it keeps the last one (one entry).
 */
interface PlainHead {
  /** `{"n":…,"r":…,"h":…,"a":…,"b":[…],"u":` */
  text: string
  /** `,"c":"<client>"}` or `,"i":1}` */
  close: string
  n: string
  r: number
  h: number
  a: number
  b: Header['b']
  c: string | undefined
}

let plainHead: PlainHead | undefined

/**
 * The JSON header of a record whose header line ends at `nl`. A header laid out as the last plain
 * one (encodeTask writes them so) is read without JSON.parse: only its runAt, enqueue time and
 * generation differ. Anything else (another name or options, a field more, a header the scripts
 * rewrote) is parsed in full. This runs once per task a worker reserves.
 */
function headerOf(record: string, nl: number): Header {
  const start = record.indexOf(':') + 1
  const head = plainHead
  if (head !== undefined && record.startsWith(head.text, start)) {
    const h = plainTail(record, start + head.text.length, nl, head)
    if (h !== undefined) return h
  }
  const text = record.slice(start, nl)
  const h = JSON.parse(text) as Header
  rememberPlain(text, h)
  return h
}

/** Reads the digits at `at` of `s`: [value, index after], or undefined when there are none. */
function digitsAt(s: string, at: number): [number, number] | undefined {
  let v = 0
  let i = at
  for (let c = s.charCodeAt(i); c >= 48 && c <= 57; c = s.charCodeAt(++i)) v = v * 10 + c - 48
  return i === at ? undefined : [v, i]
}

/**
 * The header whose text from `at` to `nl` is `<runAt>,"e":<enqueued>,"g":"<gen>"` then
 * `head.close`, or undefined when it is not exactly that.
 */
function plainTail(record: string, at: number, nl: number, head: PlainHead): Header | undefined {
  const u = digitsAt(record, at)
  if (u === undefined || !record.startsWith(',"e":', u[1])) return undefined
  const e = digitsAt(record, u[1] + 5)
  if (e === undefined || !record.startsWith(',"g":"', e[1])) return undefined
  const g0 = e[1] + 6
  const g1 = record.indexOf('"', g0)
  if (g1 < 0 || g1 + 1 + head.close.length !== nl || !record.startsWith(head.close, g1 + 1))
    return undefined
  const g = record.slice(g0, g1)
  if (g.includes('\\')) return undefined
  const h: Header = { n: head.n, r: head.r, h: head.h, a: head.a, b: head.b, u: u[0], e: e[0], g }
  if (head.c === undefined) h.i = 1
  else h.c = head.c
  return h
}

/** Keeps `h`, parsed from `text`, as the plain head when it is one (see PlainHead). */
function rememberPlain(text: string, h: Header): void {
  const keys = Object.keys(h)
  const who = h.i === 1 ? 'i' : 'c'
  if (keys.join() !== `n,r,h,a,b,u,e,g,${who}`) return
  const u = text.indexOf(',"u":')
  const close = who === 'i' ? ',"i":1}' : `,"c":${JSON.stringify(h.c)}}`
  const tail = `,"u":${h.u},"e":${h.e},"g":${JSON.stringify(h.g)}${close}`
  if (u < 0 || text.slice(u) !== tail) return
  plainHead = { text: text.slice(0, u + 5), close, n: h.n, r: h.r, h: h.h, a: h.a, b: h.b, c: h.c }
}

/**
 * The task a header describes. Built as one object literal of a fixed shape (a reserved task
 * adds its fields to it the same way each time): this runs once per task a worker reserves.
 */
function fromHeader(id: string, record: string, nl: number, h: Header): NewTask {
  const task: NewTask = {
    id,
    name: h.n,
    payload: record.slice(nl + 1),
    deps: h.d === undefined ? [] : h.d.map(([queue, ref]) => ({ queue, id: ref })),
    onError: h.o === 'p' ? 'pass' : 'fail',
    ignoreResult: h.i === 1,
    resultTimeout: h.r,
    heartrate: h.h,
    attempts: h.a,
    backoff: { type: h.b[0], delay: h.b[1], jitter: h.b[2], maxDelay: h.b[3] },
    runAt: h.u,
    timeout: (h.x?.timeout as number | undefined) ?? 0,
    priority: h.p ?? 0,
    metadata: h.m ?? '',
    cache: h.k === undefined ? undefined : { key: h.k, ttl: h.kt ?? 0, template: h.kp ?? '' },
    trace: h.tr ?? '',
  }
  // Other fields carried through as is; the header's own win.
  if (h.x !== undefined)
    for (const [k, v] of Object.entries(h.x)) if (!(k in task)) Object.assign(task, { [k]: v })
  return task
}

/** The header's enqueue time, attempts made, and `e` of a live record. */
export function recordMade(record: string): number {
  return Number(record.slice(1, record.indexOf(':')))
}

/** The header's enqueue time (ms) of a live record. */
export function recordEnqueued(record: string): number {
  return Number(/"e":(\d+)/.exec(record)?.[1] ?? 0)
}

/** The tasks exchange.lua reserved: 5 entries each (id, token, attempt, record, slots). */
export function decodeReserved(flat: readonly unknown[]): ReservedTask[] {
  const tasks: ReservedTask[] = []
  for (let i = 0; i < flat.length; i += 5) {
    const record = flat[i + 3] as string
    const nl = record.indexOf('\n', record.indexOf(':'))
    const h = headerOf(record, nl)
    const task = fromHeader(flat[i] as string, record, nl, h) as ReservedTask
    // '' when it has none (exchange.lua), else field, value, ….
    const kv = flat[i + 4] as string[] | ''
    const slots: string[] = []
    if (task.deps.length > 0 && kv !== '') {
      for (let k = 0; k < task.deps.length; k++) slots.push('')
      for (let k = 0; k < kv.length; k += 2) if (kv[k] !== 'm') slots[Number(kv[k])] = kv[k + 1]!
    }
    task.token = flat[i + 1] as string
    task.attempt = Number(flat[i + 2])
    task.slots = slots
    // When it became due: the later of its enqueue and its runAt.
    task.dueAt = Math.max(h.e ?? 0, h.u ?? 0)
    tasks.push(task)
  }
  return tasks
}

/**
 * A handover message, laid out like exchange's reserved: the text hand_over() pushes (\x1e, then
 * id, token, attempt, record and slots of each task, each preceded by \x1f; slots '' or JSON), or
 * the JSON array of a process of an earlier version.
 */
export function parseHandover(message: string): unknown[] {
  if (message.charCodeAt(0) === 0x1e) {
    const parts = message.slice(2).split('\x1f')
    if (parts.length % 5 !== 0) throw new TypeError('a handover message has 5 values a task')
    // Made as ioredis makes a reply's array (`new Array(n)`, then filled): decodeReserved reads
    // both, and arrays of one elements kind keep it compiled once (a handover's packed array met
    // code compiled for the exchange's holey one, and V8 threw that code away).
    const flat: unknown[] = new Array(parts.length)
    for (let i = 0; i < parts.length; i++)
      flat[i] = i % 5 !== 4 ? parts[i] : parts[i] === '' ? [] : JSON.parse(parts[i]!)
    return flat
  }
  const flat = JSON.parse(message) as unknown[]
  // cjson writes an empty slot list as {}.
  for (let i = 4; i < flat.length; i += 5) if (!Array.isArray(flat[i])) flat[i] = []
  return flat
}

/** The outcomes of one published message: queue, id, outcome, queue, id, outcome, …. */
export function decodeOutcomes(message: string): string[] {
  const flat: unknown = JSON.parse(message)
  if (!Array.isArray(flat) || !flat.every(x => typeof x === 'string'))
    throw new TypeError('an outcome message is an array of strings')
  return flat as string[]
}

/**
 * A message on a queue's control channel: `c<id>` (cancelled), `P` (paused), `R` (resumed), `S`
 * (schedules changed), or '' (the feed's own: messages may have been missed); undefined for any
 * other.
 */
export function controlMessage(message: string): ControlMessage | undefined {
  const kind = message.charAt(0)
  if (kind === 'c') return { type: 'cancel', id: message.slice(1) }
  if (kind === 'P') return { type: 'paused' }
  if (kind === 'R') return { type: 'resumed' }
  if (kind === 'S') return { type: 'schedules' }
  if (kind === '') return { type: 'resync' }
  return undefined
}
