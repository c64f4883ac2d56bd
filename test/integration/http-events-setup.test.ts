/**
 * `GET /api/events` while its streams are being set up (the backend's first answer not back yet):
 * a client that leaves then gives its slot back and leaves no stream reading, and clients that
 * come at once cannot pass `maxEventStreams`. A proxy between the broker and a private Redis holds
 * Redis's replies, so the set-up lasts exactly as long as the test wants.
 */
import { expect } from 'chai'
import { createServer, type Server } from 'node:http'
import { connect, createServer as createTcpServer, type Socket } from 'node:net'
import type { AddressInfo } from 'node:net'
import { getBroker, type Broker } from '../../lib/index.js'
import { worqHttp, type WorqHttpHandler } from '../../lib/http/index.js'
import { usePrivateRedis } from '../helpers/redis-server.js'
import { until, uniqueQueue } from '../helpers/util.js'

/** A TCP proxy to Redis whose replies can be held back (kept, in order) and let through later. */
interface ReplyHolder {
  url: string
  hold(): void
  release(): void
  close(): Promise<void>
}

async function replyHolder(target: string): Promise<ReplyHolder> {
  const { hostname, port } = new URL(target)
  const sockets = new Set<Socket>()
  const held: Array<[Socket, Buffer]> = []
  let holding = false
  const server = createTcpServer(client => {
    const upstream = connect(Number(port), hostname)
    for (const s of [client, upstream]) {
      sockets.add(s)
      s.on('error', () => undefined)
      s.on('close', () => {
        sockets.delete(s)
        client.destroy()
        upstream.destroy()
      })
    }
    client.pipe(upstream)
    upstream.on('data', (chunk: Buffer) => {
      if (holding) held.push([client, chunk])
      else client.write(chunk)
    })
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  return {
    url: `redis://127.0.0.1:${(server.address() as AddressInfo).port}/0`,
    hold: () => (holding = true),
    release() {
      holding = false
      for (const [client, chunk] of held.splice(0)) client.write(chunk)
    },
    async close() {
      for (const s of sockets) s.destroy()
      await new Promise(resolve => server.close(resolve))
    },
  }
}

/** Redis's count of clients in a blocking command (the event streams' XREAD BLOCK). */
async function blockedClients(admin: { info(section: string): Promise<string> }): Promise<number> {
  return Number(/blocked_clients:(\d+)/.exec(await admin.info('clients'))![1])
}

describe('http: GET /api/events while its streams are set up', function () {
  const redis = usePrivateRedis()
  let proxy: ReplyHolder
  let broker: Broker
  let handler: WorqHttpHandler
  let server: Server
  let base: string
  let port: number
  /** Requests the server has seen, and its sockets (to know when it saw a client go). */
  let requests = 0
  const sockets = new Set<Socket>()

  before(async () => {
    proxy = await replyHolder(redis.server.url)
    broker = getBroker(proxy.url, uniqueQueue('http-sse'))
    await broker.size() // connected before the replies are held
    handler = worqHttp(broker, {
      maxEventStreams: 3,
      // A request with this header is let in only once its client has gone.
      authorize: req =>
        req.headers['x-after-leaving'] === undefined ||
        new Promise<boolean>(resolve => req.socket.once('close', () => resolve(true))),
    })
    server = createServer(handler)
    server.on('request', () => requests++)
    server.on('connection', s => {
      sockets.add(s)
      s.once('close', () => sockets.delete(s))
    })
    await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
    port = (server.address() as AddressInfo).port
    base = `http://127.0.0.1:${port}`
  })

  after(async () => {
    proxy?.release()
    await handler?.close()
    server?.closeAllConnections()
    await new Promise(resolve => server?.close(resolve))
    await broker?.close()
    await proxy?.close()
  })

  /** Sends `GET /api/events` on a socket of its own, and resolves once the server has the request. */
  async function send(headers = ''): Promise<Socket> {
    const before = requests
    const socket = connect(port, '127.0.0.1')
    socket.on('error', () => undefined)
    socket.write(`GET /api/events HTTP/1.1\r\nHost: x\r\n${headers}\r\n`)
    await until(() => requests > before, 5000, 'the server to get the request')
    return socket
  }

  /** Closes `socket` and resolves once the server's side of it has closed too. */
  async function leave(socket: Socket): Promise<void> {
    const { localPort } = socket
    const mine = [...sockets].find(s => s.remotePort === localPort)!
    expect(mine, 'the server side of the socket').to.not.equal(undefined)
    const closed = new Promise(resolve => mine.once('close', resolve))
    socket.destroy()
    await closed
  }

  /** Opens `n` streams at once; resolves with their statuses once each answered, and a closer. */
  async function openStreams(n: number) {
    const aborts = Array.from({ length: n }, () => new AbortController())
    const answers = await Promise.all(
      aborts.map(a => fetch(`${base}/api/events`, { signal: a.signal })),
    )
    for (const r of answers) if (r.status !== 200) await r.body?.cancel()
    return {
      statuses: answers.map(r => r.status),
      close: () => aborts.forEach(a => a.abort()),
    }
  }

  /** Holds exactly `maxEventStreams` (3) streams at once, then closes them; no blocking read stays. */
  async function expectAllSlotsFree(): Promise<void> {
    const streams = await openStreams(3)
    expect(streams.statuses).to.deep.equal([200, 200, 200])
    const fourth = await fetch(`${base}/api/events`)
    expect(fourth.status).to.equal(503)
    await fourth.body?.cancel()
    await until(async () => (await blockedClients(redis.admin)) === 3, 5000, 'three XREADs')
    streams.close()
    await until(async () => (await blockedClients(redis.admin)) === 0, 5000, 'no XREAD left')
  }

  it('a client that leaves while its stream is set up gives its slot back and leaves no stream reading', async () => {
    proxy.hold()
    // Twice maxEventStreams: each left its slot taken for good before the fix.
    for (let i = 0; i < 6; i++) await leave(await send())
    proxy.release()
    await expectAllSlotsFree()
  })

  it('a client gone before the route ran (an async authorize) takes no slot and opens no stream', async () => {
    for (let i = 0; i < 6; i++) {
      const socket = await send('X-After-Leaving: 1\r\n')
      await leave(socket)
    }
    await expectAllSlotsFree()
  })

  it('clients that come at once get at most maxEventStreams streams; the rest 503', async () => {
    proxy.hold()
    const seen = requests
    const opening = openStreams(6)
    // The refused ones answer at once; the others wait for Redis.
    await until(() => requests >= seen + 6, 5000, 'six requests')
    proxy.release()
    const streams = await opening
    streams.close()
    expect(streams.statuses.filter(s => s === 200)).to.have.length(3)
    expect(streams.statuses.filter(s => s === 503)).to.have.length(3)
    await until(async () => (await blockedClients(redis.admin)) === 0, 5000, 'no XREAD left')
  })
})
