/**
 * HTTP itself, beyond the routes: HEAD answers as GET without a body, and the event stream's HEAD
 * its headers only.
 */
import { expect } from 'chai'
import { routeTable } from '../../lib/http/routes/index.js'
import { serveApi, type ApiFixture } from '../helpers/http-fixture.js'

/** The headers of an answer that do not change from one call to the next. */
function stable(headers: Record<string, unknown>): Record<string, unknown> {
  const { date: _date, 'content-length': _length, ...rest } = headers
  return rest
}

describe('http: HEAD, absolute-form targets, timeouts', function () {
  let api: ApiFixture
  before(async () => {
    api = await serveApi('memory://', { maxEventStreams: 1 })
  })
  after(() => api.close())

  it('HEAD on a GET route (which answered 405) answers as GET without a body, with its Content-Length', async () => {
    const done = await api.broker.queue().t.add(1, 2)
    await done.result(5000)
    const paths = routeTable(new Set())
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
})
