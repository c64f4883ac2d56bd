/**
 * A TCP forwarder for fault tests: it forwards loopback connections on a port of its own to a
 * server, and can cut every connection and refuse new ones (a network cut, as the client sees
 * it), then let connections through again on the same port.
 */
import { createServer, connect, type Server, type Socket } from 'node:net'
import { freePort } from './redis-server.js'

/** A running forwarder. */
export interface TcpForwarder {
  /** The loopback port it listens on. */
  readonly port: number
  /** Destroys every connection through it and refuses new ones until `restore()`. */
  cut(): Promise<void>
  /** Accepts and forwards connections again. */
  restore(): Promise<void>
  /** Closes everything. */
  close(): Promise<void>
}

/** Forwards `127.0.0.1:<port>` to `host:targetPort`. */
export async function tcpForwarder(targetPort: number, host = '127.0.0.1'): Promise<TcpForwarder> {
  const port = await freePort()
  const sockets = new Set<Socket>()
  let server: Server | undefined
  const open = () =>
    new Promise<void>((resolve, reject) => {
      const s = createServer(client => {
        const upstream = connect(targetPort, host)
        for (const [a, b] of [
          [client, upstream],
          [upstream, client],
        ] as const) {
          sockets.add(a)
          a.on('error', () => b.destroy())
          a.on('close', () => {
            sockets.delete(a)
            b.destroy()
          })
          a.pipe(b)
        }
      })
      s.once('error', reject)
      s.listen(port, '127.0.0.1', () => resolve())
      server = s
    })
  const shut = async () => {
    const s = server
    server = undefined
    for (const socket of sockets) socket.destroy()
    if (s) await new Promise<void>(resolve => s.close(() => resolve()))
  }
  await open()
  return { port, cut: shut, restore: open, close: shut }
}
