/**
 * A TCP proxy for fault tests: it forwards loopback connections to a Redis and can go silent on the
 * connections open now (a half-open socket, as the client sees it) while new ones pass.
 */
import { createConnection, createServer, type Socket } from 'node:net'

export interface SilentProxy {
  /** `redis://127.0.0.1:<proxy port>/0`. */
  url: string
  /** Stops forwarding on every connection open now, without closing them. */
  freeze(): void
  /** Closes everything. */
  close(): void
}

export async function silentProxy(target: string): Promise<SilentProxy> {
  const { hostname, port: targetPort } = new URL(target)
  /** Sockets still forwarding; `all` also holds frozen ones, for close(). */
  const open = new Set<Socket>()
  const all = new Set<Socket>()
  const server = createServer(client => {
    const upstream = createConnection(Number(targetPort), hostname)
    for (const s of [client, upstream]) {
      open.add(s)
      all.add(s)
      s.on('error', () => undefined)
      s.on('close', () => {
        open.delete(s)
        all.delete(s)
      })
    }
    client.pipe(upstream)
    upstream.pipe(client)
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }
  return {
    url: `redis://127.0.0.1:${port}/0`,
    freeze() {
      for (const s of open) {
        s.unpipe()
        s.pause()
      }
      open.clear()
    },
    close() {
      for (const s of all) s.destroy()
      server.close()
    },
  }
}
