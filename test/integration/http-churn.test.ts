/**
 * HTTP churn: clients that go mid-request, mid-body and mid-stream (closed, or reset so the
 * server's writes meet ECONNRESET), event-stream clients past `maxEventStreams` opening and
 * closing at once, `HEAD` on the stream, a broker closed under requests and streams, and the
 * backend cut and back under them. Nothing may reject unhandled or throw uncaught (the root hooks
 * fail the run; Node 20 ends a process on either), every stream's place is given back, and the
 * server closes without its connections being forced (nothing keeps the process alive).
 */
import { expect } from 'chai'
import { createServer, type Server } from 'node:http'
import { connect, type AddressInfo } from 'node:net'
import { getBroker, type Broker } from '../../lib/index.js'
import { worqHttp, type WorqHttpHandler } from '../../lib/http/index.js'
import { usePrivateRedis } from '../helpers/redis-server.js'
import { closeServer, trackConnections, type Connections } from '../helpers/server-close.js'
import { open } from '../helpers/sse.js'
import { tcpForwarder, type TcpForwarder } from '../helpers/tcp-forwarder.js'
import { CHURN_OPTIONS, ROUNDS } from '../helpers/churn.js'
import { unhandled, until, uniqueQueue } from '../helpers/util.js'

const MAX_STREAMS = 4

/** A served broker on a plain Node server (Node's own default timeouts, as an app would have). */
interface Served {
  broker: Broker
  handler: WorqHttpHandler
  server: Server
  connections: Connections
  port: number
  base: string
  errors: unknown[]
}

async function serveBroker(url: string): Promise<Served> {
  const broker = getBroker(url, uniqueQueue('http-churn'), CHURN_OPTIONS)
  broker.expose(async function echo(x: string) {
    return x
  })
  const errors: unknown[] = []
  const handler = worqHttp(broker, {
    submit: ['echo'],
    maxEventStreams: MAX_STREAMS,
    heartbeatMs: 20,
    bodyTimeoutMs: 300,
    healthTimeoutMs: 300,
    onError: err => errors.push(err),
  })
  const server = createServer(handler)
  const connections = trackConnections(server)
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return { broker, handler, server, connections, port, base: `http://127.0.0.1:${port}`, errors }
}

/**
 * Closes the handler, then the server: every connection that carried a request must close within
 * `ms` (a stream or a request left open would hold the server, and the process, open). Those that
 * never carried one are fetch's (test/helpers/server-close.ts): they are closed by force, as
 * `server.close()` would wait for fetch's idle timer, about 3 s, for them.
 */
async function closeServed(s: Served, ms = 3000): Promise<void> {
  await closeServer(s.handler, s.server, s.connections, ms)
}

/** How a raw client leaves ('never': it waits for the server to close the connection). */
type Leave = 'at once' | 'on first byte' | 'reset on first byte' | 'after a while' | 'never'

/** Sends `head` (and `body`) on a raw socket, and leaves as `leave` says; resolves once closed. */
function rawClient(port: number, head: string, leave: Leave, body = ''): Promise<string> {
  return new Promise(resolve => {
    const socket = connect(port, '127.0.0.1')
    const got: Buffer[] = []
    socket.on('error', () => undefined)
    socket.on('close', () => resolve(Buffer.concat(got).toString()))
    socket.write(head + body)
    if (leave === 'at once') socket.destroy()
    else if (leave === 'after a while') setTimeout(() => socket.destroy(), 30)
    socket.on('data', (chunk: Buffer) => {
      got.push(chunk)
      if (leave === 'on first byte') socket.destroy()
      // An RST: the server's next writes on the connection fail with ECONNRESET or EPIPE.
      else if (leave === 'reset on first byte') socket.resetAndDestroy()
    })
  })
}

function requestHead(method: string, path: string, headers: Record<string, string> = {}): string {
  const lines = Object.entries({ host: 'x', ...headers }).map(([k, v]) => `${k}: ${v}`)
  return `${method} ${path} HTTP/1.1\r\n${lines.join('\r\n')}\r\n\r\n`
}

/** Every kind of request, each left in every way. */
function churn(s: Served, since: string): Array<Promise<string>> {
  const leaves: Leave[] = ['at once', 'on first byte', 'reset on first byte', 'after a while']
  const half = '{"name":"echo","args":["x'
  const requests = [
    () => requestHead('GET', '/api/events'),
    () => requestHead('GET', '/api/events', { 'last-event-id': since }),
    () => requestHead('HEAD', '/api/events'),
    () => requestHead('HEAD', '/api/events', { 'last-event-id': since }),
    () => requestHead('GET', '/api/tasks'),
    () => requestHead('GET', '/api/health'),
    () => requestHead('GET', '/metrics'),
    // Mid-body: 100 bytes announced, part of them sent.
    () =>
      requestHead('POST', '/api/tasks', {
        'content-type': 'application/json',
        'content-length': '100',
      }) + half,
  ]
  return requests.flatMap(head => leaves.map(leave => rawClient(s.port, head(), leave)))
}

/** Every place among maxEventStreams is free: that many streams open, and one more is refused. */
async function streamsFree(s: Served): Promise<void> {
  await until(
    async () => {
      const streams = await Promise.all(
        Array.from({ length: MAX_STREAMS }, () => open(s.base, '/api/events')),
      )
      const ok = streams.every(st => st.res.status === 200)
      let refused = false
      if (ok) {
        const extra = await fetch(`${s.base}/api/events`)
        refused = extra.status === 503
        await extra.body?.cancel()
      }
      await Promise.all(streams.map(st => st.close()))
      return ok && refused
    },
    5000,
    'every event-stream place to be given back',
  )
}

/** An event stream, once a place is free (the ones just closed are given back as their close arrives). */
async function openWhenFree(s: Served): Promise<Awaited<ReturnType<typeof open>>> {
  let stream: Awaited<ReturnType<typeof open>> | undefined
  await until(async () => {
    stream = await open(s.base, '/api/events')
    if (stream.res.status === 200) return true
    await stream.close()
    return false
  })
  return stream!
}

const BACKENDS = ['memory', 'redis'] as const

describe('http: churn never ends the process, and leaves nothing open', function () {
  this.timeout(20_000 * ROUNDS)
  const ctx = usePrivateRedis()
  let cut: TcpForwarder
  const urls: Record<(typeof BACKENDS)[number], () => string> = {
    memory: () => 'memory://',
    redis: () => `redis://127.0.0.1:${cut.port}/0`,
  }
  beforeEach(async () => {
    cut = await tcpForwarder(ctx.server.port)
  })
  afterEach(() => cut.close())

  for (const backend of BACKENDS) {
    for (let round = 0; round < ROUNDS; round++) {
      it(`${backend}: clients that go mid-request, mid-body and mid-stream give every place back (round ${round})`, async () => {
        const s = await serveBroker(urls[backend]())
        try {
          const first = await open(s.base, '/api/events')
          await s.broker.queue().echo('a')
          const seen = await first.next(e => e.data?.type === 'enqueued')
          await first.close()
          // Twice at once, each more clients than maxEventStreams allows.
          await Promise.all([...churn(s, seen.id!), ...churn(s, seen.id!)])
          await streamsFree(s)
          expect(s.errors.map(String)).to.deep.equal([])
        } finally {
          await closeServed(s)
          await s.broker.purge().catch(() => undefined)
          await s.broker.close()
        }
      })

      it(`${backend}: a broker closed while requests and event streams are in flight (round ${round})`, async () => {
        const s = await serveBroker(urls[backend]())
        try {
          const streams = await Promise.all([
            open(s.base, '/api/events'),
            open(s.base, '/api/events', { 'last-event-id': '0' }),
          ])
          const calls = Promise.allSettled([
            ...churn(s, '0'),
            fetch(`${s.base}/api/tasks`).then(r => r.text()),
            fetch(`${s.base}/api/health`).then(r => r.text()),
          ])
          await s.broker.close()
          await calls
          // Each stream ends once its broker closed.
          await Promise.all(
            streams.map(st =>
              until(() => st.res.bodyUsed || st.seen.some(e => /failed/.test(e.comment ?? ''))),
            ),
          )
          await Promise.all(streams.map(st => st.close()))
          const late = await fetch(`${s.base}/api/events`)
          await late.body?.cancel()
          expect(late.status).to.be.at.least(500)
        } finally {
          await closeServed(s)
        }
      })
    }
  }

  for (let round = 0; round < ROUNDS; round++) {
    it(`redis: the backend cut and back under requests and event streams (round ${round})`, async () => {
      const s = await serveBroker(urls.redis())
      try {
        const streams = await Promise.all([
          open(s.base, '/api/events'),
          open(s.base, '/api/events', { 'last-event-id': '0' }),
        ])
        await cut.cut()
        const calls = Promise.allSettled([
          ...churn(s, '0'),
          fetch(`${s.base}/api/health`).then(r => r.status),
          fetch(`${s.base}/api/events`).then(r => r.body?.cancel()),
        ])
        await cut.restore()
        await calls
        await Promise.all(streams.map(st => st.close()))
        await streamsFree(s)
        // Back: a new stream hears what happens.
        const after = await openWhenFree(s)
        await s.broker.queue().echo('b')
        await after.next(e => e.data?.type === 'enqueued')
        await after.close()
        // Cut again: streams whose set-up waits on the backend end as the handler and server close.
        await cut.cut()
        let arrived = 0
        s.server.on('request', () => arrived++)
        // Raw clients, which wait for the server to close their connections: each must be closed.
        const waiting = Promise.all([
          rawClient(s.port, requestHead('GET', '/api/events'), 'never'),
          rawClient(s.port, requestHead('GET', '/api/events', { 'last-event-id': '0' }), 'never'),
        ])
        await until(() => arrived === 2)
        await closeServed(s)
        await waiting
        await cut.restore()
      } finally {
        await closeServed(s)
        await s.broker.purge().catch(() => undefined)
        await s.broker.close()
      }
    })
  }
})

describe('http: a stream asked for as the handler closes', function () {
  it('answers 503 ERR_WORQ_HTTP_CLOSED instead of holding server.close() for ever', async () => {
    // An async authorize: the stream's route runs after handler.close(). Before the fix it opened a
    // stream no one ended, and server.close() never called back.
    const broker = getBroker('memory://', uniqueQueue('http-churn'))
    const authorizing = new Set<() => void>()
    const handler = worqHttp(broker, {
      authorize: () => new Promise<boolean>(resolve => authorizing.add(() => resolve(true))),
    })
    const server = createServer(handler)
    const connections = trackConnections(server)
    await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
    const { port } = server.address() as AddressInfo
    const s: Served = { broker, handler, server, connections, port, base: '', errors: [] }
    try {
      const answer = rawClient(port, requestHead('GET', '/api/events'), 'never')
      await until(() => authorizing.size === 1)
      await handler.close()
      for (const go of authorizing) go()
      expect(await answer).to.match(/^HTTP\/1\.1 503 .*ERR_WORQ_HTTP_CLOSED/s)
      // One that comes after close() (the server accepts until server.close()): the same, and its
      // connection closes.
      const kept = connect(port, '127.0.0.1')
      const got: Buffer[] = []
      kept.on('data', (chunk: Buffer) => got.push(chunk))
      const gone = new Promise(resolve => kept.on('close', resolve))
      kept.write(requestHead('GET', '/api/events'))
      await until(() => authorizing.size === 2)
      for (const go of authorizing) go()
      await gone
      expect(Buffer.concat(got).toString()).to.match(/^HTTP\/1\.1 503 .*ERR_WORQ_HTTP_CLOSED/s)
    } finally {
      await closeServed(s)
      await broker.close()
    }
  })
})

describe('http: an onError that throws or rejects', function () {
  it('is passed over: the 5xx is answered and nothing rejects unhandled', async () => {
    // Before the fix the request was never answered and the throw was an unhandled rejection.
    for (const onError of [
      () => {
        throw new Error('the logger is closed')
      },
      async () => {
        throw new Error('the logger is closed')
      },
    ]) {
      const broker = getBroker('memory://', uniqueQueue('http-churn'))
      const handler = worqHttp(broker, { onError })
      const server = createServer(handler)
      const connections = trackConnections(server)
      await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
      const { port } = server.address() as AddressInfo
      const s: Served = { broker, handler, server, connections, port, base: '', errors: [] }
      try {
        await broker.close()
        const rejected = unhandled(200)
        const res = await fetch(`http://127.0.0.1:${port}/api/tasks`)
        expect(res.status).to.equal(503)
        expect(((await res.json()) as any).error.code).to.equal('ERR_WORQ_CLOSED')
        expect(await rejected).to.equal(undefined)
      } finally {
        await closeServed(s)
      }
    }
  })
})
