/**
 * A TCP proxy for fault tests: it forwards loopback connections to a Redis and can go silent on the
 * connections open now (a half-open socket, as the client sees it) while new ones pass, or let
 * one request through and swallow every reply after it (a reply lost in the network: the command
 * ran, the client never hears of it).
 */
import { createConnection, createServer, type Socket } from 'node:net'

export interface SilentProxy {
  /** `redis://127.0.0.1:<proxy port>/0`. */
  url: string
  /** Stops forwarding on every connection open now, without closing them. */
  freeze(): void
  /**
   * On the first connection whose client sends bytes containing `marker`: forwards those bytes,
   * then drops every reply on that connection from then on (the socket stays open). Resolves when
   * it happened.
   */
  swallowRepliesAfter(marker: string): Promise<void>
  /** Closes everything. */
  close(): void
}

export async function silentProxy(target: string): Promise<SilentProxy> {
  const { hostname, port: targetPort } = new URL(target)
  interface Pair {
    client: Socket
    upstream: Socket
    frozen: boolean
    mute: boolean
  }
  const pairs = new Set<Pair>()
  let trap: { marker: string; sprung: () => void } | undefined
  const server = createServer(client => {
    const upstream = createConnection(Number(targetPort), hostname)
    const pair: Pair = { client, upstream, frozen: false, mute: false }
    pairs.add(pair)
    for (const s of [client, upstream]) {
      s.on('error', () => undefined)
      s.on('close', () => {
        pairs.delete(pair)
        client.destroy()
        upstream.destroy()
      })
    }
    client.on('data', (chunk: Buffer) => {
      if (pair.frozen) return
      if (trap && chunk.includes(trap.marker)) {
        pair.mute = true
        trap.sprung()
        trap = undefined
      }
      upstream.write(chunk)
    })
    upstream.on('data', (chunk: Buffer) => {
      if (!pair.frozen && !pair.mute) client.write(chunk)
    })
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }
  return {
    url: `redis://127.0.0.1:${port}/0`,
    freeze() {
      for (const p of pairs) p.frozen = true
    },
    swallowRepliesAfter(marker) {
      return new Promise(resolve => (trap = { marker, sprung: resolve }))
    },
    close() {
      for (const p of pairs) {
        p.client.destroy()
        p.upstream.destroy()
      }
      server.close()
    },
  }
}
