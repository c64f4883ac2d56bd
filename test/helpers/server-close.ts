/**
 * Closing a test server the way an app shuts down (`handler.close()`, then `server.close()`) and
 * telling what keeps it open: a connection that carried a request (the handler's to close) or
 * one that never carried any.
 *
 * Node's `server.close()` closes only the connections idle when it is called, and counts one that
 * has sent no request yet as busy (so that `headersTimeout` covers it): it waits for such a
 * connection until the client closes it. `fetch` opens such connections: after a response it
 * aborted (an event stream closed by the client), its pool connects again with nothing to send,
 * and closes that connection only when its idle timer fires, about 3 s later
 * (test/integration/http-close.test.ts shows it). They are the client's, not the handler's.
 */
import { expect } from 'chai'
import type { Server } from 'node:http'
import type { Socket } from 'node:net'
import { until } from './util.js'

/** The connections of a server, and which of them carried a request. */
export interface Connections {
  /** Connections still open. */
  readonly open: Set<Socket>
  /** Connections that carried at least one request (open or not). */
  readonly used: WeakSet<Socket>
}

/** Tracks `server`'s connections from now on. */
export function trackConnections(server: Server): Connections {
  const open = new Set<Socket>()
  const used = new WeakSet<Socket>()
  server.on('connection', (socket: Socket) => {
    open.add(socket)
    socket.once('close', () => open.delete(socket))
  })
  server.on('request', req => used.add(req.socket))
  return { open, used }
}

/** What closing left. */
export interface Closed {
  /** The client ports of the connections that never carried a request, still open once every other one closed. */
  unused: number[]
}

/**
 * `handler.close()`, then `server.close()`: every connection that carried a request must close
 * within `ms` (one left open is a response that never ended, or a kept-alive connection the
 * server did not close). Those that never carried one are then closed by force, and returned:
 * `server.close()` would wait for their client to close them.
 */
export async function closeServer(
  handler: { close(): Promise<void> },
  server: Server,
  connections: Connections,
  ms = 3000,
): Promise<Closed> {
  if (!server.listening) return { unused: [] }
  await handler.close()
  const closed = new Promise<void>(resolve => server.close(() => resolve()))
  const left = () => [...connections.open].filter(s => connections.used.has(s))
  try {
    await until(() => left().length === 0, ms, 'every connection that carried a request to close')
  } catch {
    const n = left().length
    server.closeAllConnections()
    expect(n, 'connections that carried a request, still open after the server closed').to.equal(0)
  }
  const unused = [...connections.open].map(s => s.remotePort!)
  server.closeAllConnections()
  await closed
  return { unused }
}
