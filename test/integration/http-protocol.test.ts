/**
 * HTTP itself, beyond the routes: HEAD answers as GET without a body, and the event stream's HEAD
 * its headers only; a request target in absolute form (`GET http://host/api/queues`, as sent to a
 * proxy) is routed on its path.
 */
import { expect } from 'chai'
import express from 'express'
import { connect } from 'node:net'
import { SERVER_TIMEOUTS, worqHttp } from '../../lib/http/index.js'
import { routeTable } from '../../lib/http/routes/index.js'
import { serve } from '../helpers/http.js'
import { serveApi, type ApiFixture } from '../helpers/http-fixture.js'
import { buildDashboardPage } from '../helpers/dashboard-page.js'

/** The headers of an answer that do not change from one call to the next. */
function stable(headers: Record<string, unknown>): Record<string, unknown> {
  const { date: _date, 'content-length': _length, ...rest } = headers
  return rest
}

/** An answer read off a raw socket. */
interface RawAnswer {
  status: number
  headers: Record<string, string>
  body: string
}

/**
 * Sends `text` as it is on a new connection to `base`, and reads the answer until it closes. With
 * `end: false` the connection stays open for writing: a request that never finishes arriving.
 */
function raw(base: string, text: string, { end = true } = {}): Promise<RawAnswer> {
  const { hostname, port } = new URL(base)
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname)
    const chunks: Buffer[] = []
    socket.on('data', c => chunks.push(c))
    socket.on('error', reject)
    socket.on('end', () => {
      const all = Buffer.concat(chunks).toString('utf8')
      const split = all.indexOf('\r\n\r\n')
      const [statusLine, ...lines] = all.slice(0, split).split('\r\n')
      const headers: Record<string, string> = {}
      for (const line of lines) {
        const colon = line.indexOf(':')
        headers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim()
      }
      resolve({ status: Number(statusLine!.split(' ')[1]), headers, body: all.slice(split + 4) })
    })
    if (end) socket.end(text)
    else socket.write(text)
  })
}

describe('http: HEAD, absolute-form targets, timeouts', function () {
  let api: ApiFixture
  before(async () => {
    // The HEAD test fetches the page (`/`): built here, so the file passes in a clone with no build.
    buildDashboardPage()
    api = await serveApi('memory://', { maxEventStreams: 1 })
  })
  after(() => api.close())

  it('HEAD on a GET route (which answered 405) answers as GET without a body, with its Content-Length', async () => {
    const done = await api.broker.queue().t.add(1, 2)
    await done.result(5000)
    const paths = routeTable({ ends: new Set(), closed: false })
      .filter(r => r.method === 'GET' && r.path !== '/api/events')
      .map(r => r.path.replace(':id', encodeURIComponent(done.id)))
    expect(paths).to.have.length.above(8)
    // The page's files are answered already; so are a 404 and a 400 of the API.
    for (const path of [...paths, '/api/tasks/nothing', '/api/tasks?limit=0', '/']) {
      const get = await api.server.call('GET', path)
      const head = await api.server.call('HEAD', path)
      expect(head.status, `HEAD ${path}: ${head.text}`).to.equal(get.status)
      expect(stable(head.headers), path).to.deep.equal(stable(get.headers))
      expect(head.text, path).to.equal('')
      expect(head.headers['content-length'], path).to.match(/^\d+$/)
    }
    // Where the answer does not change between two calls, the length is GET's, to the byte.
    for (const path of ['/api/config', '/api/openapi.json', `/api/tasks/${done.id}`]) {
      const get = await api.server.call('GET', path)
      const head = await api.server.call('HEAD', path)
      expect(head.headers['content-length'], path).to.equal(String(Buffer.byteLength(get.text)))
    }
  })

  it('HEAD /api/events answers the stream’s headers and ends, opening no stream', async () => {
    // Twice, with maxEventStreams 1: a HEAD holds no place among the streams.
    for (let i = 0; i < 2; i++) {
      const head = await api.server.call('HEAD', '/api/events')
      expect(head.status, head.text).to.equal(200)
      expect(head.headers['content-type']).to.equal('text/event-stream; charset=utf-8')
      expect(head.headers['cache-control']).to.equal('no-store')
      expect(head.text).to.equal('')
    }
    // What GET refuses, HEAD refuses alike.
    const bad = await api.server.call('HEAD', '/api/events?queue=elsewhere')
    expect(bad.status).to.equal(404)
    const stream = await fetch(`${api.server.base}/api/events`)
    expect(stream.status).to.equal(200)
    const busy = await api.server.call('HEAD', '/api/events')
    expect(busy.status).to.equal(503)
    await stream.body!.cancel()
  })

  it('a path of other methods lists HEAD in Allow where it takes GET, and refuses HEAD where it does not', async () => {
    const put = await api.server.call('PUT', '/api/tasks')
    expect(put.status).to.equal(405)
    expect(put.headers.allow).to.equal('GET, HEAD, POST')
    expect(put.json.error.message).to.match(/takes GET, HEAD, POST, not PUT/)
    const head = await api.server.call('HEAD', '/api/tasks/x/retry')
    expect(head.status).to.equal(405)
    expect(head.headers.allow).to.equal('POST')
    expect(head.text).to.equal('')
  })

  it('a request target in absolute form (which answered 404) is routed on its path', async () => {
    const { host } = new URL(api.server.base)
    const get = (target: string) =>
      raw(api.server.base, `GET ${target} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`)
    const queues = await get(`http://${host}/api/queues`)
    expect(queues.status, queues.body).to.equal(200)
    expect(JSON.parse(queues.body)[0].name).to.equal(api.broker.name)
    // The scheme in any case, a query, another host than Host's: still the path that counts.
    const tasks = await get(`HTTPS://elsewhere.test:8443/api/tasks?limit=1&status=completed`)
    expect(tasks.status, tasks.body).to.equal(200)
    expect(JSON.parse(tasks.body)).to.be.an('array')
    const missing = await get(`http://${host}/api/nothing`)
    expect(missing.status).to.equal(404)
    expect(JSON.parse(missing.body).error.message).to.match(/no route \/api\/nothing;/)
    // A Location is a path on this server, never the host the target named.
    const body = JSON.stringify({ name: 't.add', args: [1, 2] })
    const created = await raw(
      api.server.base,
      `POST http://evil.test/api/tasks HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n` +
        `Content-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`,
    )
    expect(created.status, created.body).to.equal(201)
    expect(created.headers.location).to.match(/^\/api\/tasks\/[^/]+\?queue=/)
  })

  it('absolute form under Express (which strips its mount path but keeps the origin) and basePath', async () => {
    const app = express()
    app.use('/worq', worqHttp(api.broker))
    const mounted = [
      { server: await serve(app), path: '/worq' },
      { server: await serve(worqHttp(api.broker, { basePath: '/ops' })), path: '/ops' },
    ]
    try {
      for (const { server, path } of mounted) {
        const { host } = new URL(server.base)
        const body = JSON.stringify({ name: 't.add', args: [1, 2] })
        const created = await raw(
          server.base,
          `POST http://${host}${path}/api/tasks HTTP/1.1\r\nHost: ${host}\r\n` +
            `Connection: close\r\nContent-Type: application/json\r\n` +
            `Content-Length: ${body.length}\r\n\r\n${body}`,
        )
        expect(created.status, `${path}: ${created.body}`).to.equal(201)
        expect(created.headers.location, path).to.match(new RegExp(`^${path}/api/tasks/[^/]+\\?`))
      }
    } finally {
      for (const { server } of mounted) await server.close()
    }
  })

  it('a body that arrives too slowly (it held the connection for Node’s 300 s) is a 408 that closes it', async () => {
    const slow = await serveApi('memory://', { bodyTimeoutMs: 300, submit: ['t.add'] })
    try {
      const { host } = new URL(slow.server.base)
      const started = Date.now()
      // 100 bytes announced, 10 sent, then nothing: the answer comes, and the connection closes.
      const r = await raw(
        slow.server.base,
        `POST /api/tasks HTTP/1.1\r\nHost: ${host}\r\nContent-Type: application/json\r\n` +
          `Content-Length: 100\r\n\r\n{"name":"t`,
        { end: false },
      )
      expect(Date.now() - started).to.be.within(250, 5000)
      expect(r.status, r.body).to.equal(408)
      expect(r.headers.connection).to.equal('close')
      expect(JSON.parse(r.body).error).to.deep.equal({
        code: 'ERR_WORQ_HTTP_BODY_TIMEOUT',
        message:
          "the request body did not arrive within 300 ms (the server's bodyTimeoutMs option): send it at once",
      })
      // Chunked, a chunk at a time slower than the limit allows in all: the same.
      const chunked = await raw(
        slow.server.base,
        `POST /api/tasks HTTP/1.1\r\nHost: ${host}\r\nContent-Type: application/json\r\n` +
          `Transfer-Encoding: chunked\r\n\r\n1\r\n{\r\n`,
        { end: false },
      )
      expect(chunked.status).to.equal(408)
      expect(await slow.broker.size()).to.equal(0)
      // A body in time is taken as before.
      const ok = await slow.server.call('POST', '/api/tasks', {
        json: { name: 't.add', args: [1, 2] },
      })
      expect(ok.status, ok.text).to.equal(201)
    } finally {
      await slow.close()
    }
  })

  it('SERVER_TIMEOUTS: headers too slow are cut; an event stream outlives requestTimeout (it covers receiving the request only)', async () => {
    expect(SERVER_TIMEOUTS).to.deep.equal({
      headersTimeout: 10_000,
      requestTimeout: 30_000,
      keepAliveTimeout: 5_000,
      connectionsCheckingInterval: 1_000,
    })
    // The same settings, scaled down so that the test runs in a second.
    const handler = worqHttp(api.broker)
    const server = await serve(handler, {
      ...SERVER_TIMEOUTS,
      headersTimeout: 200,
      requestTimeout: 400,
      connectionsCheckingInterval: 50,
    })
    try {
      const { host } = new URL(server.base)
      const headers = await raw(server.base, `GET /api/queues HTTP/1.1\r\nHost: ${host}\r\n`, {
        end: false,
      })
      expect(headers.status).to.equal(408)
      const stream = await fetch(`${server.base}/api/events`)
      expect(stream.status).to.equal(200)
      const reader = stream.body!.getReader()
      await new Promise(resolve => setTimeout(resolve, 1000)) // 2.5 × requestTimeout
      await api.broker.queue().t.add(5, 6)
      let text = ''
      while (!text.includes('"completed"')) {
        const { value, done } = await reader.read()
        if (done) throw new Error(`the stream ended: ${text}`)
        text += Buffer.from(value).toString('utf8')
      }
      await reader.cancel()
    } finally {
      await handler.close()
      await server.close()
    }
  })
})
