/**
 * EventStream: a queue's events as one process reads them (`broker.events()`), for `for await` or
 * for listeners. It reads the backend's event log from its position on, in batches, waiting on
 * the backend when there is nothing new; a reader that fell behind further than the log keeps gets
 * a `gap` event. docs/events.md says what each event carries, and in what order.
 */
import type { Backend, StoredEvent } from '../backends/backend.js'
import { callListener } from '../listener.js'
import { decodeValue } from '../serializer.js'
import type { QueueEvent, QueueEventOf, QueueEventType } from './types.js'

/** Events fetched per read. */
const BATCH = 500
/** Longest single wait on the backend, ms (then it waits again). */
const BLOCK_MS = 5000
/** Events a stream holds for a slow `for await` consumer before it stops reading ahead. */
const BUFFER = 10_000

/** Options of `broker.events()`. */
export interface EventsOptions {
  /**
   * Where to start: `'now'` (only what happens from the call on), or an `eventId` seen before:
   * everything after it that the backend still keeps (a `gap` event says when some were dropped).
   * @default 'now'
   */
  since?: 'now' | string
}

function decodeProgress(text: string | undefined): unknown {
  if (text === undefined) return undefined
  try {
    return decodeValue(text)
  } catch {
    return undefined
  }
}

/** A stored event as users get it. */
export function toQueueEvent(e: StoredEvent, queue: string): QueueEvent {
  const base = { id: e.id, name: e.name, queue, time: new Date(e.time), eventId: e.eventId }
  const attempt = e.attempt ?? 0
  const error = e.error ?? { name: 'Error', message: '' }
  const run = {
    ...(e.workerId !== undefined && { workerId: e.workerId }),
    ...(e.ms !== undefined && { ms: e.ms }),
  }
  switch (e.type) {
    case 'started':
      return { ...base, type: e.type, attempt, workerId: e.workerId ?? '' }
    case 'progress':
      return {
        ...base,
        type: e.type,
        attempt,
        workerId: e.workerId ?? '',
        progress: decodeProgress(e.progress),
      }
    case 'completed':
      return { ...base, type: e.type, attempt, workerId: e.workerId ?? '', ms: e.ms ?? 0 }
    case 'failed':
    case 'cancelled':
      return { ...base, type: e.type, attempt, ...run, error }
    case 'expired':
      return { ...base, type: e.type, attempt, ...run, error }
    case 'retrying':
      return { ...base, type: e.type, attempt, ...run, delay: e.delay ?? 0, error }
    case 'enqueued':
      return e.released
        ? { ...base, type: e.type, released: true, attempt, workerId: e.workerId ?? '' }
        : { ...base, type: e.type }
    default:
      return { ...base, type: e.type }
  }
}

type Listener = (event: QueueEvent) => void

/** Whether a stored event reads as one: a known type, its task's id and name, a time. */
function readableEvent(e: StoredEvent): boolean {
  return (
    EVENT_TYPES.has(e.type) &&
    e.type !== ('gap' as string) &&
    typeof e.id === 'string' &&
    typeof e.name === 'string' &&
    Number.isFinite(e.time)
  )
}

/** Every event type a stream delivers (the record makes the compiler hold it to the union). */
const EVENT_TYPES: ReadonlySet<string> = new Set(
  Object.keys({
    enqueued: true,
    started: true,
    progress: true,
    completed: true,
    failed: true,
    retrying: true,
    expired: true,
    cancelled: true,
    cached: true,
    paused: true,
    resumed: true,
    gap: true,
  } satisfies Record<QueueEventType, true>),
)

/**
 * A queue's event stream. Iterate it (`for await (const e of events)`) or add listeners
 * (`events.on('failed', e => …)`); `close()` ends both. Each event arrives once per stream, in the
 * order the queue's events happened.
 */
export class EventStream implements AsyncIterable<QueueEvent> {
  /** The queue. */
  readonly queue: string
  /** Resolves once the stream's starting position is fixed: what happens from then on is read. */
  readonly ready: Promise<void>
  readonly #backend: Promise<Backend>
  readonly #listeners = new Map<QueueEventType | '*', Set<Listener>>()
  readonly #buffer: QueueEvent[] = []
  readonly #abort = new AbortController()
  #position: string | undefined
  /** Wakes a `for await` waiting for an event. */
  #wake: (() => void) | undefined
  /** Wakes the reader waiting for room in the buffer. */
  #room: (() => void) | undefined
  #loop: Promise<void> | undefined
  #error: unknown
  #closed = false
  #iterating = false
  /** Aborts (its reason a `BrokerClosed`) when the broker that made the stream closes. */
  readonly #brokerClosed: AbortSignal | undefined
  readonly #onBrokerClosed = (): void => {
    this.#error ??= this.#brokerClosed!.reason
    void this.close()
  }

  /**
   * @internal Made by `broker.events()`; `brokerClosed` aborts when that broker closes: the
   * stream stops, and a `for await` over it throws the signal's reason (`BrokerClosed`).
   */
  constructor(
    backend: Promise<Backend>,
    queue: string,
    options: EventsOptions = {},
    brokerClosed?: AbortSignal,
  ) {
    // Its failure reaches whoever reads the stream; it must not also be an unhandled rejection
    // (the options below may be refused before anything awaits it).
    backend.catch(() => undefined)
    const since = options?.since ?? 'now'
    if (typeof since !== 'string' || (since !== 'now' && !/^\d+$/.test(since)))
      throw new TypeError(
        `Expected \`since\` to be 'now' or an eventId (digits), got ${JSON.stringify(since)}`,
      )
    this.queue = queue
    this.#backend = backend
    // 'now' is fixed at once, so that what the caller does next is in the stream.
    this.ready =
      since === 'now'
        ? backend
            .then(b => b.readEvents(queue, 'now', { count: 0, blockMs: 0 }))
            .then(batch => {
              this.#position ??= batch.last
            })
        : Promise.resolve().then(() => {
            this.#position = since
          })
    this.ready.catch(() => undefined)
    this.#brokerClosed = brokerClosed
    brokerClosed?.addEventListener('abort', this.#onBrokerClosed, { once: true })
  }

  /**
   * The eventId of the last event this stream read from the backend (delivered to listeners, or
   * held for `for await`); once `ready` resolved and before any event, the position it starts
   * after. `broker.events({ since: position })` gets everything this stream has not read.
   * Undefined before `ready`, or '0' for a queue that has had no event yet.
   */
  get position(): string | undefined {
    return this.#position
  }

  /**
   * Adds a listener for one event type (or `'*'` for all); starts reading. A listener that
   * throws, or returns a promise that rejects (an `async` listener), is passed over: the stream
   * and the other listeners go on, and the failure is dropped, never an unhandled rejection;
   * catch inside the listener to see it.
   */
  on<T extends QueueEventType>(type: T | '*', listener: (event: QueueEventOf<T>) => void): this {
    if (typeof listener !== 'function')
      throw new TypeError(`Expected the listener to be a function, got ${typeof listener}`)
    if (type !== '*' && !EVENT_TYPES.has(type))
      throw new TypeError(
        `Unknown event type ${JSON.stringify(type)}; known: ${[...EVENT_TYPES].join(', ')}, or '*'`,
      )
    let set = this.#listeners.get(type)
    if (!set) this.#listeners.set(type, (set = new Set()))
    set.add(listener as Listener)
    this.#start()
    return this
  }

  /** Removes a listener. */
  off<T extends QueueEventType>(type: T | '*', listener: (event: QueueEventOf<T>) => void): this {
    this.#listeners.get(type)?.delete(listener as Listener)
    return this
  }

  /**
   * Stops reading; a `for await` over the stream ends. Idempotent. (When the broker closes, the
   * stream stops too, and a `for await` over it throws `BrokerClosed`.)
   */
  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    this.#brokerClosed?.removeEventListener('abort', this.#onBrokerClosed)
    this.#abort.abort()
    this.#wakeConsumer()
    this.#room?.()
    await this.#loop
  }

  /** The events, as they happen, until `close()`. */
  async *[Symbol.asyncIterator](): AsyncIterator<QueueEvent> {
    if (this.#iterating)
      throw new TypeError(
        'Expected an EventStream to be iterated once; open another with broker.events()',
      )
    this.#iterating = true
    this.#start()
    try {
      for (;;) {
        const next = this.#buffer.shift()
        if (next) {
          if (this.#buffer.length === BUFFER - 1) this.#room?.() // room again
          yield next
          continue
        }
        if (this.#error !== undefined) throw this.#error
        if (this.#closed) return
        await new Promise<void>(resolve => (this.#wake = resolve))
      }
    } finally {
      await this.close()
    }
  }

  #wakeConsumer(): void {
    const wake = this.#wake
    this.#wake = undefined
    wake?.()
  }

  #start(): void {
    this.#loop ??= this.#read().catch(err => {
      this.#error ??= err
      this.#wakeConsumer()
    })
  }

  async #read(): Promise<void> {
    const backend = await this.#backend
    await this.ready
    while (!this.#closed) {
      if (this.#iterating && this.#buffer.length >= BUFFER) {
        await new Promise<void>(resolve => (this.#room = resolve))
        this.#room = undefined
        continue
      }
      const batch = await backend.readEvents(this.queue, this.#position!, {
        count: BATCH,
        blockMs: BLOCK_MS,
        signal: this.#abort.signal,
      })
      if (this.#closed) return
      if (batch.gap) {
        const at = batch.events[0]
        this.#deliver({
          type: 'gap',
          id: '',
          name: '',
          queue: this.queue,
          time: new Date(at ? at.time : Date.now()),
          eventId: this.#position!,
        })
      }
      // An event that does not read as one (stored by something other than worq) is skipped; the
      // position still moves past it.
      for (const e of batch.events) if (readableEvent(e)) this.#deliver(toQueueEvent(e, this.queue))
      this.#position = batch.last
    }
  }

  #deliver(event: QueueEvent): void {
    if (this.#iterating) {
      this.#buffer.push(event)
      this.#wakeConsumer()
    }
    for (const key of [event.type, '*'] as const)
      // A listener's throw or rejection is its own; the stream and the other listeners go on.
      for (const l of [...(this.#listeners.get(key) ?? [])]) callListener(l, event)
  }
}
