/**
 * Mounting: as Express middleware under a path (Express strips it; Location headers and the
 * page's redirect keep it), at Express's root next to the app's own routes, and in a plain Node
 * server under `basePath`. Several queues behind one handler, and health when a backend is down.
 */
import { expect } from 'chai'
import express from 'express'
import { createServer as netServer } from 'node:net'
import { getBroker } from '../../lib/index.js'
import { worqHttp } from '../../lib/http/index.js'
import { serve } from '../helpers/http.js'
import { serveApi, testSpace } from '../helpers/http-fixture.js'
import { redisUrl } from '../helpers/redis-server.js'
import { latch, uniqueQueue } from '../helpers/util.js'

describe('http: mounting in Express and Node, several queues, health', function () {
  let url: string
  before(async () => {
    url = await redisUrl()
  })

  it("Express: app.use('/worq', worqHttp(broker)) serves the API and the page under /worq", async () => {
    const broker = getBroker(url, uniqueQueue('express')).expose(testSpace(latch()))
    const app = express()
    app.use('/worq', worqHttp(broker, { submit: ['t.add'] }))
    app.get('/hello', (_req, res) => void res.send('hello from the app'))
    const server = await serve(app)
    try {
      const health = await server.call('GET', '/worq/api/health')
      expect(health.status).to.equal(200)
      expect(health.json.ok).to.equal(true)
      const redirect = await server.call('GET', '/worq')
      expect(redirect.status).to.equal(308)
      expect(redirect.headers.location).to.equal('/worq/')
      const created = await server.call('POST', '/worq/api/tasks', {
        json: { name: 't.add', args: [1, 2] },
      })
      expect(created.status, created.text).to.equal(201)
      expect(created.headers.location).to.equal(
        `/worq/api/tasks/${encodeURIComponent(created.json.id)}?queue=${broker.name}`,
      )
      const read = await server.call('GET', created.headers.location!)
      expect(read.json.id).to.equal(created.json.id)
      const missing = await server.call('GET', '/worq/api/nothing')
      expect(missing.json.error.code).to.equal('ERR_WORQ_HTTP_NOT_FOUND')
      expect((await server.call('GET', '/hello')).text).to.equal('hello from the app')
      // HEAD through Express: GET's status and length, no body.
      const head = await server.call('HEAD', created.headers.location!)
      expect(head.status).to.equal(200)
      expect(head.text).to.equal('')
      expect(head.headers['content-length']).to.match(/^[1-9]\d*$/)
    } finally {
      await server.close()
      await broker.purge()
      await broker.close()
    }
  })

  it('Express at the root: what is not the API or the page goes on to the next handler', async () => {
    const broker = getBroker(url, uniqueQueue('express'))
    const app = express()
    app.use(worqHttp(broker))
    app.get('/hello', (_req, res) => void res.send('hello from the app'))
    const server = await serve(app)
    try {
      const hello = await server.call('GET', '/hello')
      expect(hello.text).to.equal('hello from the app')
      // The app's own answers are left as they are: none of worqHttp's headers.
      expect(hello.headers['x-frame-options']).to.equal(undefined)
      expect(hello.headers['x-content-type-options']).to.equal(undefined)
      expect((await server.call('GET', '/api/queues')).json[0].name).to.equal(broker.name)
    } finally {
      await server.close()
      await broker.close()
    }
  })

  it('Express with express.json() in front: a clear 500 that says to mount worqHttp first', async () => {
    const broker = getBroker(url, uniqueQueue('express'))
    const app = express()
    app.use(express.json())
    app.use('/worq', worqHttp(broker))
    const server = await serve(app)
    try {
      const r = await server.call('POST', '/worq/api/tasks', {
        json: { name: 't.add', args: [1, 2] },
      })
      expect(r.status).to.equal(500)
      expect(r.json.error.code).to.equal('ERR_WORQ_HTTP_BODY_CONSUMED')
      expect(r.json.error.message).to.match(/mount worqHttp before express\.json\(\)/)
      expect(await broker.size()).to.equal(0)
    } finally {
      await server.close()
      await broker.close()
    }
  })

  it("plain Node with basePath '/ops/worq': only paths under it are served", async () => {
    const api = await serveApi(url, { basePath: '/ops/worq' })
    try {
      expect((await api.server.call('GET', '/ops/worq/api/health')).status).to.equal(200)
      expect((await api.server.call('GET', '/api/health')).status).to.equal(404)
      expect((await api.server.call('GET', '/ops/worqx/api/health')).status).to.equal(404)
      const redirect = await api.server.call('GET', '/ops/worq')
      expect(redirect.status).to.equal(308)
      expect(redirect.headers.location).to.equal('/ops/worq/')
      const created = await api.server.call('POST', '/ops/worq/api/tasks', {
        json: { name: 't.add', args: [1, 2] },
      })
      expect(created.headers.location).to.match(/^\/ops\/worq\/api\/tasks\//)
    } finally {
      await api.close()
    }
  })

  it('several queues: reads that need one ask for ?queue=, lists cover all', async () => {
    const api = await serveApi(url, {}, { queues: 2 })
    const [a, b] = api.brokers.map(x => x.name)
    try {
      expect(
        (await api.server.call('GET', '/api/queues')).json.map((q: { name: string }) => q.name),
      ).to.deep.equal([a, b])
      const noQueue = await api.server.call('GET', '/api/tasks')
      expect(noQueue.status).to.equal(400)
      expect(noQueue.json.error.code).to.equal('ERR_WORQ_HTTP_QUEUE_REQUIRED')
      expect(noQueue.json.error.message).to.contain(`${a}, ${b}`)
      const submit = await api.server.call('POST', '/api/tasks', {
        json: { name: 't.add', args: [1, 2] },
      })
      expect(submit.json.error.code).to.equal('ERR_WORQ_HTTP_QUEUE_REQUIRED')
      const onB = await api.server.call('POST', '/api/tasks', {
        json: { queue: b, name: 't.add', args: [1, 2] },
      })
      // Only the first queue has a worker: on b nothing exposes t.add.
      expect(onB.status).to.equal(403)
      const onA = await api.server.call('POST', '/api/tasks', {
        json: { queue: a, name: 't.add', args: [1, 2] },
      })
      expect(onA.status).to.equal(201)
      expect((await api.server.call('GET', `/api/tasks?queue=${b}`)).json).to.deep.equal([])
      expect(
        (await api.server.call('GET', '/api/workers')).json.map((w: { queue: string }) => w.queue),
      ).to.deep.equal([a])
      expect((await api.server.call('GET', `/api/workers?queue=${b}`)).json).to.deep.equal([])
    } finally {
      await api.close()
    }
  })

  it('GET /api/health answers 503 with ok: false when a backend cannot be reached', async () => {
    // A port that accepts nothing: a listener closed at once.
    const port = await new Promise<number>(resolve => {
      const s = netServer().listen(0, '127.0.0.1', () => {
        const p = (s.address() as { port: number }).port
        s.close(() => resolve(p))
      })
    })
    const broker = getBroker(`redis://127.0.0.1:${port}/0`, 'down', { connectTimeoutMs: 500 })
    const server = await serve(worqHttp(broker, { healthTimeoutMs: 300 }))
    try {
      const r = await server.call('GET', '/api/health')
      expect(r.status).to.equal(503)
      expect(r.json).to.include({
        ok: false,
        backend: `redis://127.0.0.1:${port}/0`,
        latencyMs: 300,
      })
      // Any other route: 503 with the library's code, not a 500.
      const tasks = await server.call('GET', '/api/tasks')
      expect(tasks.status).to.equal(503)
      expect(tasks.json.error.code).to.equal('ERR_WORQ_BACKEND_UNREACHABLE')
    } finally {
      await server.close()
      await broker.close()
    }
  })
})
