/**
 * Who may do what: the token (every API request and /metrics; the page's own files need none),
 * `authorize`, `readOnly`, the `submit` policy, and the headers every answer carries (nosniff, no
 * CORS, a strict CSP on the page).
 */
import { expect } from 'chai'
import { buildDashboardPage } from '../helpers/dashboard-page.js'
import { getBroker } from '../../lib/index.js'
import { worqHttp } from '../../lib/http/index.js'
import { redisUrl } from '../helpers/redis-server.js'
import { serveApi, type ApiFixture } from '../helpers/http-fixture.js'
import { until } from '../helpers/util.js'

const TOKEN = 's3cret-token'

describe('http: token, authorize, readOnly, submit, headers', function () {
  let url: string
  before(async () => {
    url = await redisUrl()
    // The page's files, so that serving them is tested too (esbuild: well under a second).
    buildDashboardPage()
  })

  describe('with a token', () => {
    let api: ApiFixture
    before(async () => {
      api = await serveApi(url, { token: TOKEN })
    })
    after(() => api.close())

    it('refuses every API request and /metrics without the right bearer token (401, WWW-Authenticate)', async () => {
      for (const path of [
        '/api/health',
        '/api/queues',
        '/api/tasks',
        '/metrics',
        '/api/openapi.json',
        '/api/events',
      ]) {
        const tries: Record<string, string>[] = [
          {},
          { authorization: `Bearer ${TOKEN}x` },
          { authorization: TOKEN },
          { authorization: `Basic ${TOKEN}` },
          { authorization: `Bearer ${TOKEN.slice(0, -1)}` },
        ]
        for (const headers of tries) {
          const r = await api.server.call('GET', path, { headers })
          expect(r.status, `${path} ${JSON.stringify(headers)}`).to.equal(401)
          expect(r.json.error.code).to.equal('ERR_WORQ_HTTP_UNAUTHORIZED')
          expect(r.headers['www-authenticate']).to.equal('Bearer realm="worq"')
        }
      }
      const post = await api.server.call('POST', '/api/tasks', {
        json: { name: 't.add', args: [1, 2] },
      })
      expect(post.status).to.equal(401)
      expect(await api.broker.size()).to.equal(0)
    })

    it('answers with the token, /metrics included', async () => {
      const auth = { authorization: `Bearer ${TOKEN}` }
      expect((await api.server.call('GET', '/api/health', { headers: auth })).status).to.equal(200)
      expect((await api.server.call('GET', '/metrics', { headers: auth })).text).to.contain(
        'worq_tasks_total',
      )
      const lower = await api.server.call('GET', '/api/queues', {
        headers: { authorization: `bearer ${TOKEN}` },
      })
      expect(lower.status).to.equal(200)
    })

    it("serves the page's files without the token (they hold no data), with a strict CSP", async () => {
      const page = await api.server.call('GET', '/')
      expect(page.status).to.equal(200)
      expect(page.headers['content-type']).to.equal('text/html; charset=utf-8')
      expect(page.text).to.contain('<script defer src="app.js">')
      expect(page.headers['content-security-policy']).to.contain("default-src 'none'")
      expect(page.headers['content-security-policy']).to.contain("script-src 'self'")
      expect(page.headers['content-security-policy']).to.contain("frame-ancestors 'none'")
      const js = await api.server.call('GET', '/app.js')
      expect(js.status).to.equal(200)
      expect(js.headers['content-type']).to.equal('text/javascript; charset=utf-8')
      // Nothing from another host: no absolute URL to load in the page's script or markup.
      expect(js.text).to.not.match(/(src|href)=["']https?:/)
      expect(page.text).to.not.match(/https?:\/\//)
      const head = await api.server.call('HEAD', '/app.css')
      expect(head.status).to.equal(200)
      expect(head.text).to.equal('')
      for (const path of [
        '/../package.json',
        '/%2e%2e/package.json',
        '/app.js/..',
        '/index.html%00',
        '/dist/http/dashboard/app.js',
      ]) {
        const r = await api.server.call('GET', path)
        expect(r.status, path).to.equal(404)
      }
    })
  })

  it('authorize(req) decides after the token: 403 when it says no', async () => {
    const api = await serveApi(url, { authorize: req => req.headers['x-team'] === 'ops' })
    try {
      const refused = await api.server.call('GET', '/api/queues')
      expect(refused.status).to.equal(403)
      expect(refused.json.error.code).to.equal('ERR_WORQ_HTTP_FORBIDDEN')
      expect(
        (await api.server.call('GET', '/api/queues', { headers: { 'x-team': 'ops' } })).status,
      ).to.equal(200)
    } finally {
      await api.close()
    }
  })

  it('readOnly: every change answers 403 and changes nothing; reads work', async () => {
    const api = await serveApi(url, { readOnly: true })
    try {
      const q = api.broker.name
      await api.broker.pause()
      const d = await api.broker.queue().t.add(1, 2)
      const changes: Array<[string, string, object?]> = [
        ['POST', '/api/tasks', { json: { name: 't.add', args: [1, 2] } }],
        ['DELETE', `/api/tasks/${d.id}`],
        ['POST', `/api/tasks/${d.id}/retry`],
        ['POST', `/api/queues/${q}/pause`],
        ['POST', `/api/queues/${q}/resume`],
        ['DELETE', `/api/queues/${q}/tasks?confirm=${q}`],
      ]
      for (const [method, path, options] of changes) {
        const r = await api.server.call(method, path, options)
        expect(r.status, `${method} ${path}`).to.equal(403)
        expect(r.json.error.code).to.equal('ERR_WORQ_HTTP_READ_ONLY')
      }
      expect(await api.broker.size()).to.equal(1)
      expect(await api.broker.isPaused()).to.equal(true)
      expect((await api.server.call('GET', `/api/tasks/${d.id}`)).json.status).to.equal('enqueued')
      expect((await api.server.call('GET', '/api/config')).json.readOnly).to.equal(true)
    } finally {
      await api.broker.resume()
      await api.close()
    }
  })

  it("submit: 'exposed' (the default) allows only what live workers expose; a list; a function", async () => {
    const exposed = await serveApi(url)
    try {
      const ok = await exposed.server.call('POST', '/api/tasks', {
        json: { name: 't.add', args: [1, 2] },
      })
      expect(ok.status).to.equal(201)
      const unknown = await exposed.server.call('POST', '/api/tasks', {
        json: { name: 'x.y', args: [] },
      })
      expect(unknown.status).to.equal(403)
      expect(unknown.json.error.message).to.match(/no live worker .* exposes x\.y/)
    } finally {
      await exposed.close()
    }
    const fn = await serveApi(url, {
      submit: (name, queue) => name === 't.add' && queue.startsWith('http-'),
    })
    try {
      expect(
        (await fn.server.call('POST', '/api/tasks', { json: { name: 't.add', args: [1, 2] } }))
          .status,
      ).to.equal(201)
      expect(
        (await fn.server.call('POST', '/api/tasks', { json: { name: 't.echo', args: [] } })).status,
      ).to.equal(403)
    } finally {
      await fn.close()
    }
  })

  it('retry obeys the submit policy (it re-ran tasks whose name submit does not allow): 403, nothing enqueued', async () => {
    // A list that allows t.add only; a program (not HTTP) enqueued t.fails, which failed.
    const listed = await serveApi(url, { submit: ['t.add'] })
    try {
      const failed = await listed.broker.queue().t.fails('no')
      await until(async () => (await failed.status()) === 'failed', 5000, 'the failure')
      const before = (await listed.broker.tasks()).length
      const r = await listed.server.call('POST', `/api/tasks/${failed.id}/retry`)
      expect(r.status, r.text).to.equal(403)
      expect(r.json.error.code).to.equal('ERR_WORQ_HTTP_NOT_ALLOWED')
      expect(r.json.error.message).to.match(/t\.fails.*submit/)
      expect((await listed.broker.tasks()).length).to.equal(before)
      expect(await listed.broker.size()).to.equal(0)
    } finally {
      await listed.close()
    }
    // 'exposed': a cancelled task of a name no live worker exposes is not run again.
    const exposed = await serveApi(url)
    try {
      await exposed.broker.pause()
      const orphan = await (exposed.broker.queue() as any).gone.task(1)
      await orphan.cancel()
      const r = await exposed.server.call('POST', `/api/tasks/${orphan.id}/retry`)
      expect(r.status, r.text).to.equal(403)
      expect(r.json.error.message).to.match(/no live worker .* exposes gone\.task/)
      expect(await exposed.broker.size()).to.equal(0)
      // What the policy allows is retried as before, and the function sees the name and queue.
      const seen: string[] = []
      const fn = await serveApi(url, {
        submit: (name, queue) => (seen.push(`${name}@${queue}`), name === 't.fails'),
      })
      try {
        const failed = await fn.broker.queue().t.fails('no')
        await until(async () => (await failed.status()) === 'failed', 5000, 'the failure')
        const again = await fn.server.call('POST', `/api/tasks/${failed.id}/retry`)
        expect(again.status, again.text).to.equal(201)
        expect(again.json).to.include({ name: 't.fails' })
        expect(seen).to.deep.equal([`t.fails@${fn.broker.name}`])
        const unknown = await fn.server.call('POST', '/api/tasks/nothing/retry')
        expect(unknown.status).to.equal(404)
      } finally {
        await fn.close()
      }
    } finally {
      await exposed.broker.resume()
      await exposed.close()
    }
  })

  it('every answer says nosniff and no-store; no CORS header even when a page of another origin asks', async () => {
    const api = await serveApi(url)
    try {
      for (const path of ['/api/queues', '/api/nothing', '/']) {
        const r = await api.server.call('GET', path, { headers: { origin: 'http://evil.test' } })
        expect(r.headers['x-content-type-options'], path).to.equal('nosniff')
        expect(r.headers['access-control-allow-origin'], path).to.equal(undefined)
      }
      expect((await api.server.call('GET', '/api/queues')).headers['cache-control']).to.equal(
        'no-store',
      )
      const preflight = await api.server.call('OPTIONS', '/api/tasks', {
        headers: { origin: 'http://evil.test', 'access-control-request-method': 'POST' },
      })
      expect(preflight.status).to.equal(405)
      expect(preflight.headers['access-control-allow-origin']).to.equal(undefined)
    } finally {
      await api.close()
    }
  })

  it('bad options are TypeErrors that name the option', () => {
    const broker = getBroker('memory://', 'http-options')
    const bad: Array<[object, RegExp]> = [
      [{ token: '' }, /`token`/],
      [{ token: 'has space' }, /`token`/],
      [{ basePath: 'worq' }, /`basePath`/],
      [{ basePath: '/worq/' }, /`basePath`/],
      [{ bodyLimit: 0 }, /`bodyLimit`/],
      [{ submit: 'everything' }, /`submit`/],
      [{ authorize: 'yes' }, /`authorize`/],
    ]
    for (const [options, message] of bad)
      expect(() => worqHttp(broker, options as never), JSON.stringify(options)).to.throw(
        TypeError,
        message,
      )
    // A delay past Node's timers (2^31 − 1 ms) fired at once: heartbeats every millisecond.
    for (const name of ['bodyTimeoutMs', 'heartbeatMs', 'healthTimeoutMs']) {
      expect(() => worqHttp(broker, { [name]: 0 })).to.throw(TypeError, `\`${name}\``)
      expect(() => worqHttp(broker, { [name]: 2 ** 31 })).to.throw(
        TypeError,
        `Expected \`${name}\` to be at most 2147483647 ms`,
      )
      expect(() => worqHttp(broker, { [name]: 2 ** 31 - 1 })).to.not.throw()
    }
    expect(() => worqHttp([broker, broker])).to.throw(TypeError, /one broker per queue/)
    expect(() => worqHttp([])).to.throw(TypeError, /at least one/)
    return broker.close()
  })
})
