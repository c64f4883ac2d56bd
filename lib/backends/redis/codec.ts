/**
 * How tasks are laid out in Redis: the record header (decoded by the scripts with cjson) kept apart
 * from the payload (never decoded in Lua), and the reverse for reserved tasks. The record format
 * is documented at the top of scripts/common.lua.
 */
import { nanoid } from 'nanoid'
import type { NewTask, ReservedTask, StoredBackoff } from '../backend.js'
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
 * The enqueue.lua entry of a task; `client` gets its outcome unless it ignores results. The
 * header is written field by field (its shape is fixed) rather than through an object and
 * JSON.stringify: this runs once per call on the producer's hot path. Everything enqueue.lua
 * needs besides id and runAt it reads from the header, and only when it needs it.
 */
export function encodeTask(task: NewTask, client: string, now: number): EnqueueEntry {
  const gen = GEN_PREFIX + (++genSeq).toString(36)
  const b = task.backoff
  let header =
    `{"n":${JSON.stringify(task.name)},"r":${ms(task.resultTimeout)},"h":${ms(task.heartrate)},` +
    `"a":${task.attempts},"b":[${JSON.stringify(b.type)},${ms(b.delay)},${b.jitter},${ms(b.maxDelay)}],` +
    `"u":${task.runAt},"e":${now},"g":"${gen}"`
  const meta = task.ignoreResult
    ? `${ms(task.heartrate)}|0||${gen}`
    : `${ms(task.heartrate)}|${ms(task.resultTimeout)}|${client}|${gen}`
  if (task.ignoreResult) header += ',"i":1'
  else header += `,"c":${JSON.stringify(client)}`
  const pending = task.deps.length > 0
  if (pending) header += `,"d":${JSON.stringify(task.deps.map(d => [d.queue, d.id]))}`
  if (task.onError === 'pass') header += ',"o":"p"'
  if (task.timeout) header += `,"x":{"timeout":${ms(task.timeout)}}`
  return {
    id: task.id,
    runAt: task.runAt,
    body: `${pending ? 'P' : 'E'}0:${header}}\n${task.payload}`,
    meta,
  }
}

/** The tasks exchange.lua reserved: 5 entries each (id, token, attempt, record, slots). */
export function decodeReserved(flat: readonly unknown[]): ReservedTask[] {
  const tasks: ReservedTask[] = []
  for (let i = 0; i < flat.length; i += 5) {
    const id = flat[i] as string
    const record = flat[i + 3] as string
    const colon = record.indexOf(':')
    const nl = record.indexOf('\n', colon)
    const h = JSON.parse(record.slice(colon + 1, nl)) as Header
    const deps = (h.d ?? []).map(([queue, ref]) => ({ queue, id: ref }))
    const kv = flat[i + 4] as string[]
    const slots: string[] = deps.map(() => '')
    for (let k = 0; k < kv.length; k += 2) if (kv[k] !== 'm') slots[Number(kv[k])] = kv[k + 1]!
    tasks.push({
      ...(h.x as Partial<NewTask>),
      id,
      name: h.n,
      payload: record.slice(nl + 1),
      deps,
      onError: h.o === 'p' ? 'pass' : 'fail',
      ignoreResult: h.i === 1,
      resultTimeout: h.r,
      heartrate: h.h,
      attempts: h.a,
      backoff: { type: h.b[0], delay: h.b[1], jitter: h.b[2], maxDelay: h.b[3] },
      runAt: h.u,
      token: flat[i + 1] as string,
      attempt: Number(flat[i + 2]),
      slots,
    } as ReservedTask)
  }
  return tasks
}

/** The outcomes of one published message: queue, id, outcome, queue, id, outcome, …. */
export function decodeOutcomes(message: string): string[] {
  const flat: unknown = JSON.parse(message)
  if (!Array.isArray(flat) || !flat.every(x => typeof x === 'string'))
    throw new TypeError('an outcome message is an array of strings')
  return flat as string[]
}
