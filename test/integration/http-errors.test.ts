/**
 * The library's coded errors as the API answers them, against real Redis servers: each with the
 * status that fits and its own code and message in the body (never a bare 500), and handed to
 * `onError`. The table of docs/http.md lists every code of lib/errors.ts with the status the
 * server answers. (PostgreSQL's codes: http-errors-postgres.test.ts.)
 */
import { expect } from 'chai'
import { readFileSync } from 'node:fs'
import { connect, createServer, type AddressInfo, type Socket } from 'node:net'
import { Redis } from 'ioredis'
import { STATUS_OF_CODE } from '../../lib/http/errors.js'
import { routeTable } from '../../lib/http/routes/index.js'
import { expectCoded, served } from '../helpers/http-coded.js'
import { serveApi } from '../helpers/http-fixture.js'
import { redisUrl, startRedis, type RedisServer } from '../helpers/redis-server.js'

/** A TCP proxy to Redis that reports every server's version as 5.x (older than worq needs). */
async function oldRedis(target: string): Promise<{ url: string; close(): Promise<void> }> {
  const { port } = new URL(target)
  const sockets = new Set<Socket>()
  const server = createServer(client => {
    const upstream = connect(Number(port), '127.0.0.1')
    for (const s of [client, upstream]) {
      sockets.add(s)
      s.on('error', () => undefined)
      s.on('close', () => (client.destroy(), upstream.destroy()))
    }
    client.pipe(upstream)
    // The same length, so that the reply's byte count still holds.
    upstream.on('data', (chunk: Buffer) =>
      client.write(
        chunk.toString('latin1').replace(/redis_version:\d/g, 'redis_version:5'),
        'latin1',
      ),
    )
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  return {
    url: `redis://127.0.0.1:${(server.address() as AddressInfo).port}/0`,
    async close() {
      for (const s of sockets) s.destroy()
      await new Promise(resolve => server.close(resolve))
    },
  }
}

describe('http: the library’s coded errors', function () {
  it('after broker.close() every route that reads the queue answers 503 ERR_WORQ_CLOSED', async () => {
    const errors: unknown[] = []
    const api = await serveApi(
      await redisUrl(),
      { submit: ['t.add'], onError: err => errors.push(err) },
      { worker: false },
    )
    const queue = api.broker.name
    try {
      await api.broker.close()
      const own = ['/api/health', '/api/config', '/api/openapi.json']
      let walked = 0
      for (const route of routeTable({ ends: new Set(), closed: false })) {
        if (own.includes(route.path)) continue
        const path = route.path.replace(':id', 'some-id').replace(':name', queue)
        const query =
          route.path.endsWith('/tasks') && route.method === 'DELETE' ? `?confirm=${queue}` : ''
        const json =
          route.method === 'POST' && route.path === '/api/tasks' ? { name: 't.add' } : undefined
        const answer = await api.server.call(route.method, path + query, json ? { json } : {})
        const where = `${route.method} ${route.path}`
        expect(answer.status, `${where}: ${answer.text}`).to.equal(503)
        expect(answer.json?.error?.code, where).to.equal('ERR_WORQ_CLOSED')
        expect(answer.json.error.message, where).to.match(/is closed/)
        walked++
      }
      expect(walked).to.equal(routeTable({ ends: new Set(), closed: false }).length - own.length)
      expect(errors.length).to.equal(walked)
      // The server's own answers need no backend.
      expect((await api.server.call('GET', '/api/config')).status).to.equal(200)
      expect((await api.server.call('GET', '/api/health')).json).to.include({ ok: false })
    } finally {
      await api.close()
    }
  })

  it('a TypeError that is not one of the library’s argument checks is a 500 handed to onError, not a 400', async () => {
    const errors: unknown[] = []
    const api = await serveApi(
      await redisUrl(),
      {
        // A bug in the application's own functions: each throws a TypeError of the runtime.
        authorize: req => (req.headers['x-bug'] === 'authorize' ? (null as any).user : true),
        submit: name => (name === 't.echo' ? (undefined as any).allowed : true),
        onError: err => errors.push(err),
      },
      { worker: false },
    )
    try {
      const answers = [
        await api.server.call('GET', '/api/queues', { headers: { 'x-bug': 'authorize' } }),
        await api.server.call('POST', '/api/tasks', { json: { name: 't.echo' } }),
      ]
      for (const answer of answers) {
        expect(answer.status, answer.text).to.equal(500)
        expect(answer.json.error.code).to.equal('ERR_WORQ_HTTP_INTERNAL')
        expect(answer.json.error.message).to.not.match(/Cannot read/)
      }
      expect(errors.map(e => (e as Error).constructor.name)).to.deep.equal([
        'TypeError',
        'TypeError',
      ])
      // The library's own checks are still the client's mistake.
      const bad = await api.server.call('POST', '/api/tasks', {
        json: { name: 't.add', options: { priority: 'high' } },
      })
      expect(bad.status, bad.text).to.equal(400)
      expect(bad.json.error.message).to.match(/^Expected `priority`/)
      expect(await api.broker.size()).to.equal(0)
    } finally {
      await api.close()
    }
  })

  describe('on a Redis of their own', () => {
    let redis: RedisServer
    let admin: Redis
    before(async () => {
      redis = await startRedis({ args: ['--maxmemory-policy', 'noeviction'] })
      admin = new Redis(redis.url)
    })
    after(async () => {
      admin?.disconnect()
      await redis?.stop()
    })

    it('out of memory: POST /api/tasks answers 503 ERR_WORQ_BACKEND_FULL; sent again once memory is free, it is enqueued', async () => {
      const api = await served(redis.url)
      try {
        await api.broker.size() // connected and checked before the server is full
        await admin.config('SET', 'maxmemory', '1')
        const full = await api.submit()
        expectCoded(full, 503, 'ERR_WORQ_BACKEND_FULL', api.errors)
        expect(full.json.error.message).to.match(/out of memory.*raise maxmemory/)
        expect(await api.broker.size()).to.equal(0)
        await admin.config('SET', 'maxmemory', '0')
        expect((await api.submit()).status).to.equal(201)
        expect(await api.broker.size()).to.equal(1)
      } finally {
        await admin.config('SET', 'maxmemory', '0')
        await api.close()
      }
    })

    it('replicas: 1 and no replica: POST /api/tasks answers 504 ERR_WORQ_REPLICATION_TIMEOUT', async () => {
      const api = await served(redis.url, { replicas: 1, replicaTimeoutMs: 20 })
      try {
        const answer = await api.submit()
        expectCoded(answer, 504, 'ERR_WORQ_REPLICATION_TIMEOUT', api.errors)
        expect(answer.json.error.message).to.match(/0 of 1 replicas acknowledged/)
      } finally {
        await api.close()
      }
    })

    it('a Redis older than 6.2: every route that reads the queue answers 503 ERR_WORQ_UNSUPPORTED_SERVER', async () => {
      const proxy = await oldRedis(redis.url)
      const api = await served(proxy.url)
      try {
        for (const path of ['/api/queues', '/api/tasks']) {
          const answer = await api.server.call('GET', path)
          expectCoded(answer, 503, 'ERR_WORQ_UNSUPPORTED_SERVER', api.errors)
          expect(answer.json.error.message, path).to.match(/version 5\.\d.*needs Redis 6\.2/)
        }
        expectCoded(await api.submit(), 503, 'ERR_WORQ_UNSUPPORTED_SERVER', api.errors)
      } finally {
        await api.close()
        await proxy.close()
      }
    })
  })

  it('docs/http.md lists every code of lib/errors.ts with the status the server answers', () => {
    const library = readFileSync(new URL('../../lib/errors.ts', import.meta.url), 'utf8')
    const codes = [...new Set(library.match(/ERR_WORQ_[A-Z_]+/g))]
    expect(codes.length).to.be.greaterThan(15)
    // Every code the server maps is one the library has (ERR_WORQ_BROKER_CLOSED was not).
    for (const code of Object.keys(STATUS_OF_CODE)) expect(codes, code).to.include(code)
    const docs = readFileSync(new URL('../../docs/http.md', import.meta.url), 'utf8')
    const table = /\n### Errors\n([\s\S]*?)\n##/.exec(docs)?.[1] ?? ''
    for (const code of codes) {
      const row = table
        .split('\n')
        .find(line => line.startsWith('|') && line.includes(`\`${code}\``))
      expect(row, `a row of docs/http.md for ${code}`).to.be.a('string')
      const status = STATUS_OF_CODE[code] ?? 500
      expect(row!.split('|')[1]!.trim(), code).to.equal(String(status))
    }
  })
})
