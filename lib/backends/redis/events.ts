/**
 * Reading a queue's event stream (the format of scripts/observe.lua): entries `<n>-0` holding one
 * call's events (four values each, after the call's time), the last of which is event number n. A reader's position is an event
 * number; a read that finds nothing waits with XREAD BLOCK on a blocking connection of its own
 * (kept in a small pool for the next read), and a read whose events were trimmed away meanwhile
 * reports a gap.
 */
import type { Connection as Redis } from './connections.js'
import type { EventBatch, EventType, ReadOptions, StoredEvent } from '../backend.js'
import { queueKey } from './keys.js'

/** One call's events, column by column (as field `e` of the oldest entries held them). */
interface RawEvents {
  at: number
  t: EventType[]
  i: string[]
  n: string[]
  a: Array<number | string | false>
  w: Array<string | false>
  x: Array<
    false | { ms?: number; d?: number; p?: string; r?: 1; e?: { n: string; m: string; c?: string } }
  >
}

type Entry = [id: string, fields: string[]]

function toEvent(e: RawEvents, j: number, n: number): StoredEvent {
  const event: StoredEvent = {
    eventId: String(n),
    type: e.t[j]!,
    id: e.i[j]!,
    name: e.n[j]!,
    time: e.at,
  }
  const attempt = e.a[j]
  if (attempt !== false && attempt !== undefined) event.attempt = Number(attempt)
  const worker = e.w[j]
  if (worker) event.workerId = worker
  const x = e.x[j]
  if (x) {
    if (x.ms !== undefined) event.ms = x.ms
    if (x.d !== undefined) event.delay = x.d
    if (x.p !== undefined) event.progress = x.p
    if (x.r === 1) event.released = true
    if (x.e !== undefined)
      event.error = { name: x.e.n, message: x.e.m, ...(x.e.c !== undefined && { code: x.e.c }) }
  }
  return event
}

/** The types that end a run: their events carry its run time. */
const ENDS = new Set(['completed', 'failed', 'expired', 'cancelled', 'cached', 'retrying'])

/**
 * One call's events from its parts (observe.lua): the time, and per event its type, task id, what
 * it says of its task (a name, a details head, or a tokens value whose head follows its newline)
 * and JSON of the rest ('' for none).
 */
function fromParts(
  at: number,
  t: EventType[],
  ids: string[],
  heads: string[],
  rest: string[],
): RawEvents {
  const raw: RawEvents = { at, t, i: ids, n: [], a: [], w: [], x: [] }
  t.forEach((type, j) => {
    const text = heads[j] ?? ''
    const head = text.slice(text.indexOf('\n') + 1).split('|')
    raw.n.push(head[0] ?? '')
    const x = rest[j] ? (JSON.parse(rest[j]!) as Exclude<RawEvents['x'][number], false>) : {}
    if (head.length >= 8) {
      // <name>|<enqueued>|<attempts>|<priority>|<started>|<worker>|<attempt>|<holds>
      raw.a.push(Number(head[6]) > 0 ? head[6]! : false)
      raw.w.push(head[5] || false)
      if (head[4] && ENDS.has(type)) x.ms = Math.max(0, at - Number(head[4]))
    } else {
      raw.a.push(false)
      raw.w.push(false)
    }
    raw.x.push(x)
  })
  return raw
}

/**
 * Field `f` (the current format): the time, \x1e, then four values per event (type, task id,
 * head, rest) split by \x1f.
 */
function fromFlat(body: string): RawEvents | undefined {
  const sep = body.indexOf('\x1e')
  if (sep < 0) return undefined
  const values = body.slice(sep + 1).split('\x1f')
  if (values.length % 4 !== 0) return undefined
  const t: EventType[] = []
  const ids: string[] = []
  const heads: string[] = []
  const rest: string[] = []
  for (let k = 0; k < values.length; k += 4) {
    t.push(values[k] as EventType)
    ids.push(values[k + 1]!)
    heads.push(values[k + 2]!)
    rest.push(values[k + 3]!)
  }
  return fromParts(Number(body.slice(0, sep)), t, ids, heads, rest)
}

/** Field `v` (written before `f`): five columns split by \x1e, their values by \x1f. */
function fromColumns(body: string): RawEvents | undefined {
  const c = body.split('\x1e')
  if (c.length !== 5) return undefined
  return fromParts(
    Number(c[0]),
    c[1]!.split('\x1f') as EventType[],
    c[2]!.split('\x1f'),
    c[3]!.split('\x1f'),
    c[4]!.split('\x1f'),
  )
}

/** One entry's events, or undefined for an entry that cannot be read. */
function entryEvents(fields: string[]): RawEvents | undefined {
  try {
    if (fields[0] === 'f') return fromFlat(fields[1] ?? '')
    const v = fields.indexOf('v')
    if (v >= 0 && v % 2 === 0) return fromColumns(fields[v + 1] ?? '')
    const raw = JSON.parse(fields[fields.indexOf('e') + 1] ?? '{}') as RawEvents
    // cjson writes an empty column as {}.
    return Array.isArray(raw.t) ? raw : undefined
  } catch {
    return undefined
  }
}

/** The events after `position` in `entries`, at most `count`, and whether some were trimmed. */
function decode(entries: Entry[], position: number, count: number, reset: boolean): EventBatch {
  const events: StoredEvent[] = []
  let gap = reset
  let last = position
  for (const [id, fields] of entries) {
    const lastN = Number(id.slice(0, id.indexOf('-')))
    const raw = entryEvents(fields)
    if (!raw) continue
    const first = lastN - raw.t.length + 1
    if (events.length === 0 && first > last + 1) gap = true
    for (let j = 0; j < raw.t.length; j++) {
      const n = first + j
      if (n <= last) continue
      if (events.length >= count) return { events, gap, last: String(last) }
      events.push(toEvent(raw, j, n))
      last = n
    }
  }
  return { events, gap, last: String(last) }
}

/** Reads events and metrics of a Redis backend's queues. */
export class EventReader {
  readonly #idle: Redis[] = []
  readonly #busy = new Set<Redis>()
  #closed = false

  constructor(
    private readonly cmd: Redis,
    private readonly open: () => Redis,
  ) {}

  async read(queue: string, after: string, options: ReadOptions): Promise<EventBatch> {
    const stream = queueKey(queue, 'ev')
    const lastN = Number((await this.cmd.get(queueKey(queue, 'evn'))) ?? 0)
    let position = after === 'now' ? lastN : Number(after)
    if (!Number.isFinite(position) || position < 0) position = 0
    // A position past the last event belongs to another stream (its keys were removed): start over.
    const reset = position > lastN
    if (reset) position = 0
    // XRANGE … COUNT 0 answers nil, not an empty list, once the stream exists: a read of no events
    // (the position of 'now') asks nothing.
    let entries =
      options.count > 0
        ? (((await this.cmd.xrange(stream, `${position + 1}-0`, '+', 'COUNT', options.count)) as
            Entry[] | null) ?? [])
        : []
    if (
      entries.length === 0 &&
      !reset &&
      options.blockMs > 0 &&
      !options.signal?.aborted &&
      !this.#closed
    )
      entries = await this.#block(stream, position, options)
    return decode(entries, position, options.count, reset)
  }

  /** XREAD BLOCK on a blocking connection; none on abort or close. */
  async #block(stream: string, position: number, options: ReadOptions): Promise<Entry[]> {
    const conn = this.#idle.pop() ?? this.open()
    const onAbort = () => conn.disconnect()
    options.signal?.addEventListener('abort', onAbort, { once: true })
    this.#busy.add(conn)
    try {
      const reply = (await conn.xread(
        'COUNT',
        options.count,
        'BLOCK',
        Math.max(1, Math.round(options.blockMs)),
        'STREAMS',
        stream,
        `${position}-0`,
      )) as Array<[string, Entry[]]> | null
      if (!options.signal?.aborted && !this.#closed) this.#idle.push(conn)
      else conn.disconnect()
      return reply?.[0]?.[1] ?? []
    } catch {
      conn.disconnect()
      return []
    } finally {
      this.#busy.delete(conn)
      options.signal?.removeEventListener('abort', onAbort)
    }
  }

  /** Drops the blocking connections (reads in flight end empty). */
  close(): void {
    this.#closed = true
    for (const c of [...this.#idle.splice(0), ...this.#busy]) c.disconnect()
  }

  /** The blocking connections open now (for tests of connection counts). */
  get connections(): Redis[] {
    return [...this.#idle, ...this.#busy]
  }
}
