/**
 * A TCP proxy that cuts a connection at its reply: the way a PostgreSQL statement's connection
 * drops in the instant between its commit and its reply (the pool then sends it again).
 */
import { createConnection, createServer } from 'node:net'

/**
 * A proxy to `target` that, once armed with a marker, cuts the connection that sent it at its
 * reply.
 */
export async function cutAtReply(target: string) {
  const to = new URL(target)
  let marker: string | undefined
  let cuts = 0
  const server = createServer(client => {
    const upstream = createConnection(Number(to.port || 5432), to.hostname)
    let cut = false
    for (const s of [client, upstream]) {
      s.on('error', () => undefined)
      s.on('close', () => {
        client.destroy()
        upstream.destroy()
      })
    }
    client.on('data', (chunk: Buffer) => {
      if (marker !== undefined && chunk.includes(marker)) {
        cut = true
        marker = undefined
      }
      upstream.write(chunk)
    })
    upstream.on('data', (chunk: Buffer) => {
      if (!cut) return void client.write(chunk)
      cuts++
      client.destroy()
      upstream.destroy()
    })
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const via = new URL(target)
  via.host = `127.0.0.1:${(server.address() as { port: number }).port}`
  return {
    url: via.toString(),
    arm: (m: string) => void (marker = m),
    /** How many connections it cut at a reply. */
    cuts: () => cuts,
    close: () => void server.close(),
  }
}
