/**
 * `GET /api/events`: a queue's event stream (or every served queue's) as Server-Sent Events. One
 * `EventStream` per client and queue, closed when the client goes. Each event is one `data:` line
 * of JSON (lib/http/types.ts EventJson) with an `id:` line, so a client that reconnects sends
 * `Last-Event-ID` and resumes where it was: the queue's eventId for one queue, or
 * `queue=eventId&queue=eventId` (URL-encoded) for several. A comment every `heartbeatMs` keeps
 * proxies from closing an idle stream. A `gap` event means events were dropped: read afresh. Its
 * `id:` resumes after it (not at the position the log did not hold, which would be a gap again).
 * `HEAD` answers the stream's headers after the same checks, and opens no stream.
 */
import type { Broker, EventStream } from '../index.js'
import { HttpError, badRequest } from './errors.js'
import { eventJson } from './json.js'
import type { Context, Reply, Route } from './router.js'

/** A client buffering more than this (bytes not yet sent) is dropped; it resumes on reconnect. */
const MAX_BUFFERED = 1024 * 1024

/** The headers of an event stream's answer. */
const SSE_HEADERS = {
  'Content-Type': 'text/event-stream; charset=utf-8',
  'Cache-Control': 'no-store',
  'X-Accel-Buffering': 'no',
}

/**
 * The live event streams of one handler, as the functions that end them (for `close()`), and
 * whether `close()` ran: no stream opens after it (one would hold the server open).
 */
export interface Clients {
  readonly ends: Set<() => void>
  closed: boolean
}

/** Where each queue's stream starts, from the `Last-Event-ID` header. */
export function resumePoints(
  header: string | undefined,
  queues: readonly string[],
): Map<string, string> {
  const points = new Map<string, string>()
  if (header === undefined || header === '') return points
  if (queues.length === 1 && /^\d{1,20}$/.test(header)) {
    points.set(queues[0]!, header)
    return points
  }
  for (const pair of header.split('&')) {
    const [rawQueue, id, extra] = pair.split('=')
    let queue: string
    try {
      queue = decodeURIComponent(rawQueue ?? '')
    } catch {
      queue = ''
    }
    if (extra !== undefined || !queues.includes(queue) || !/^\d{1,20}$/.test(id ?? ''))
      throw badRequest(
        'Last-Event-ID is not an id this server sent: an eventId, or queue=eventId pairs joined by &',
        'ERR_WORQ_HTTP_BAD_EVENT_ID',
      )
    points.set(queue, id!)
  }
  return points
}

/** The `id:` of an event: the eventId for one queue, every queue's position for several. */
function idLine(positions: Map<string, string>, single: boolean): string {
  if (single) return [...positions.values()][0] ?? ''
  return [...positions]
    .filter(([, id]) => id !== '')
    .map(([q, id]) => `${encodeURIComponent(q)}=${id}`)
    .join('&')
}

async function serve(ctx: Context, clients: Clients): Promise<Reply | undefined> {
  const { served, req, res, query } = ctx
  const queue = query.get('queue')
  const brokers: Broker[] =
    queue === undefined ? [...served.brokers.values()] : [served.broker(queue)]
  const single = brokers.length === 1
  // Closed (a request that was on its way, or came on a kept-alive connection): a stream opened
  // now would never end, and `server.close()` would wait for it for ever.
  if (clients.closed)
    throw new HttpError(
      503,
      'ERR_WORQ_HTTP_CLOSED',
      'this server is closing (its handler was closed): it opens no event stream; connect to another',
      { Connection: 'close' },
    )
  const points = resumePoints(
    req.headers['last-event-id'] as string | undefined,
    brokers.map(b => b.name),
  )
  if (clients.ends.size >= served.options.maxEventStreams)
    throw new HttpError(
      503,
      'ERR_WORQ_HTTP_BUSY',
      `this server has ${clients.ends.size} event streams open, its maxEventStreams; try again later`,
      { 'Retry-After': '5' },
    )
  // HEAD: the stream's headers once GET's checks passed, then the end. No stream is opened (it
  // would only be closed unread) and no place among maxEventStreams is taken.
  if (req.method === 'HEAD') {
    res.writeHead(200, SSE_HEADERS)
    res.end()
    return undefined
  }
  // The slot is taken before anything is awaited, and given back whenever the client goes, even
  // while its streams are being set up: clients that come at once cannot pass maxEventStreams, and
  // one that leaves early leaves no stream reading behind it.
  const streams: EventStream[] = []
  let heartbeat: ReturnType<typeof setInterval> | undefined = undefined
  let ended = false
  /** Gives the slot back and closes the streams; false when that was done already. */
  const release = (): boolean => {
    if (ended) return false
    ended = true
    clearInterval(heartbeat)
    clients.ends.delete(end)
    for (const s of streams) void s.close()
    return true
  }
  const end = () => {
    if (!release()) return
    // Before the stream started (handler.close() while it was set up) there is nothing to end.
    if (!res.headersSent) res.destroy()
    else if (!res.writableEnded) {
      const socket = res.socket
      res.end()
      // The handler closed: the connection closes after the end, as every answer does then (its
      // headers, sent, could not say so). Kept alive, it would hold a `server.close()` called
      // before `handler.close()` until the client or keepAliveTimeout closed it.
      if (clients.closed) socket?.destroySoon()
    }
  }
  clients.ends.add(end)
  res.once('close', end)
  // Gone before this route ran (while an async `authorize` decided, say): nothing to set up.
  if (res.destroyed) {
    end()
    return undefined
  }
  // Once every stream's position is fixed, what happens next is in the stream: say so then.
  try {
    for (const b of brokers) streams.push(b.events({ since: points.get(b.name) ?? 'now' }))
    await Promise.all(streams.map(s => s.ready))
  } catch (err) {
    const gone = ended
    release()
    if (gone) return undefined
    throw err
  }
  if (ended) return undefined
  // Each queue's position from the start, so that any id sent resumes every queue where it was.
  const positions = new Map(brokers.map((b, i) => [b.name, streams[i]!.position ?? '0']))
  res.writeHead(200, SSE_HEADERS)
  res.write('retry: 2000\n: connected\n\n')
  heartbeat = setInterval(() => res.write(': ping\n\n'), served.options.heartbeatMs)
  heartbeat.unref()
  await Promise.all(
    streams.map(async (stream, i) => {
      try {
        for await (const event of stream) {
          if (ended) return
          // A gap's eventId is the position the log did not hold (older than it keeps, or past
          // its newest event): resuming there is the same gap again. Its id is where the stream
          // has read to: past every event read by now, each of which happened before the client
          // could read afresh, as a gap asks it to.
          const at = event.type === 'gap' ? (stream.position ?? event.eventId) : event.eventId
          positions.set(brokers[i]!.name, at)
          res.write(
            `id: ${idLine(positions, single)}\ndata: ${JSON.stringify(eventJson(event))}\n\n`,
          )
          if (res.writableLength > MAX_BUFFERED) end()
        }
      } catch (err) {
        // The backend failed under the stream: end it, the client reconnects and resumes.
        if (!ended)
          res.write(`: the event stream failed (${(err as Error).message}); reconnect\n\n`)
        end()
      }
    }),
  )
  end()
  return undefined
}

/** The SSE route, serving into `clients`. */
export function eventRoute(clients: Clients): Route {
  return {
    method: 'GET',
    path: '/api/events',
    query: ['queue'],
    change: false,
    handle: ctx => serve(ctx, clients),
  }
}
