/**
 * Hostile input to the API, against a real Redis: each request gets a clear 4xx that names what to
 * change, and none of them changes anything (the queue holds no task afterwards).
 */
import { expect } from 'chai'
import { request } from 'node:http'
import { redisUrl } from '../helpers/redis-server.js'
import { serveApi, type ApiFixture } from '../helpers/http-fixture.js'

describe('http: hostile input gets a 4xx and changes nothing', function () {
  let api: ApiFixture
  before(async () => {
    // No worker: whatever a request enqueued would stay in the queue and be counted.
    api = await serveApi(
      await redisUrl(),
      // The names with a segment "then" are allowed here, so that only the body check refuses them.
      { submit: ['t.add', 't.echo', 'then.x', 't.then', 'a.then.b'], bodyLimit: 64 * 1024 },
      { worker: false },
    )
  })
  after(async () => {
    await api.close()
  })

  const cases: Array<
    [what: string, body: string | Buffer, status: number, code: string, names?: RegExp]
  > = [
    ['bad JSON', '{"name": "t.add", ', 400, 'ERR_WORQ_HTTP_BAD_JSON'],
    ['not an object', '[1, 2]', 400, 'ERR_WORQ_HTTP_BAD_REQUEST', /object/],
    ['a name of the wrong type', '{"name": 5}', 400, 'ERR_WORQ_HTTP_BAD_REQUEST', /`name`/],
    ['a bad dotted name', '{"name": "t..add"}', 400, 'ERR_WORQ_HTTP_BAD_REQUEST', /`name`/],
    ...['then.x', 't.then', 'a.then.b'].map((name): [string, string, number, string, RegExp] => [
      `a name with a segment "then" (${name})`,
      JSON.stringify({ name }),
      400,
      'ERR_WORQ_HTTP_BAD_REQUEST',
      /`name`.*segment "then".*rename/,
    ]),
    [
      'args not an array',
      '{"name": "t.add", "args": {"0": 1}}',
      400,
      'ERR_WORQ_HTTP_BAD_REQUEST',
      /`args`/,
    ],
    [
      'an unknown field',
      '{"name": "t.add", "colour": 1}',
      400,
      'ERR_WORQ_HTTP_BAD_REQUEST',
      /colour/,
    ],
    [
      'an unknown option',
      '{"name": "t.add", "options": {"heartrate": 10}}',
      400,
      'ERR_WORQ_HTTP_BAD_REQUEST',
      /heartrate/,
    ],
    [
      'a bad priority',
      '{"name": "t.add", "options": {"priority": "high"}}',
      400,
      'ERR_WORQ_HTTP_BAD_REQUEST',
      /`priority`/,
    ],
    [
      'a bad delay',
      '{"name": "t.add", "options": {"delay": -5}}',
      400,
      'ERR_WORQ_HTTP_BAD_REQUEST',
      /`delay`/,
    ],
    [
      'a delay past any date (a task was enqueued and then answered 400)',
      '{"name": "t.add", "options": {"delay": 1e300}}',
      400,
      'ERR_WORQ_HTTP_BAD_REQUEST',
      /`delay`/,
    ],
    [
      'a bad attempts',
      '{"name": "t.add", "options": {"attempts": 0.5}}',
      400,
      'ERR_WORQ_HTTP_BAD_REQUEST',
      /`attempts`/,
    ],
    [
      'a bad id',
      '{"name": "t.add", "options": {"id": ""}}',
      400,
      'ERR_WORQ_HTTP_BAD_REQUEST',
      /`id`/,
    ],
    [
      'metadata not an object',
      '{"name": "t.add", "options": {"metadata": [1]}}',
      400,
      'ERR_WORQ_HTTP_BAD_REQUEST',
      /`metadata`/,
    ],
    [
      '__proto__ at the top',
      '{"name": "t.add", "__proto__": {"polluted": 1}}',
      400,
      'ERR_WORQ_HTTP_FORBIDDEN_KEY',
      /__proto__/,
    ],
    [
      '__proto__ in options',
      '{"name": "t.add", "options": {"__proto__": {"priority": 1}}}',
      400,
      'ERR_WORQ_HTTP_FORBIDDEN_KEY',
      /__proto__/,
    ],
    [
      'constructor in args',
      '{"name": "t.echo", "args": [{"constructor": {"prototype": {"x": 1}}}]}',
      400,
      'ERR_WORQ_HTTP_FORBIDDEN_KEY',
      /constructor/,
    ],
    [
      'prototype in metadata',
      '{"name": "t.add", "options": {"metadata": {"prototype": 1}}}',
      400,
      'ERR_WORQ_HTTP_FORBIDDEN_KEY',
      /prototype/,
    ],
    [
      'deep nesting',
      `{"name": "t.echo", "args": ${'['.repeat(100)}${']'.repeat(100)}}`,
      400,
      'ERR_WORQ_HTTP_BAD_REQUEST',
      /deeper/,
    ],
    [
      'bytes that are not UTF-8',
      Buffer.from([0x7b, 0x22, 0x6e, 0xff, 0xfe, 0x22, 0x7d]),
      400,
      'ERR_WORQ_HTTP_BAD_UTF8',
    ],
    [
      'an overlong UTF-8 encoding',
      Buffer.from([0x7b, 0x22, 0xc0, 0xaf, 0x22, 0x3a, 0x31, 0x7d]),
      400,
      'ERR_WORQ_HTTP_BAD_UTF8',
    ],
    [
      'a name not allowed',
      '{"name": "t.hold", "args": [1]}',
      403,
      'ERR_WORQ_HTTP_NOT_ALLOWED',
      /t\.hold/,
    ],
    [
      'a queue not served',
      '{"queue": "other", "name": "t.add"}',
      404,
      'ERR_WORQ_HTTP_NO_SUCH_QUEUE',
    ],
  ]

  for (const [what, body, status, code, names] of cases)
    it(`${what}: ${status} ${code}`, async () => {
      const r = await api.server.call('POST', '/api/tasks', {
        body,
        headers: { 'content-type': 'application/json' },
      })
      expect(r.status, r.text).to.equal(status)
      expect(r.json.error.code).to.equal(code)
      if (names) expect(r.json.error.message).to.match(names)
      expect(r.headers['content-type']).to.equal('application/json; charset=utf-8')
      expect(await api.broker.size()).to.equal(0)
      expect(({} as Record<string, unknown>).polluted).to.equal(undefined)
    })

  it('a tagged value superjson cannot read is a 400 that says so without superjson’s internals', async () => {
    for (const meta of [
      { values: { a: ['class', 'Foo'] } }, // superjson recursed until the stack overflowed
      { referentialEqualities: ['a'] }, // root.forEach is not a function
      { values: [['custom', 'Foo']] },
    ]) {
      const r = await api.server.call('POST', '/api/tasks', {
        json: { name: 't.echo', args: [1, { $superjson: { json: { a: 1 }, meta } }] },
      })
      const what = JSON.stringify(meta)
      expect(r.status, what).to.equal(400)
      expect(r.json.error.code, what).to.equal('ERR_WORQ_HTTP_BAD_REQUEST')
      expect(r.json.error.message, what).to.match(
        /^args\[1\] is a tagged value that cannot be read: .*SuperJSON\.serialize/,
      )
      expect(r.json.error.message, what).to.not.match(/stack|forEach|custom value|superjson cannot/)
    }
    expect(await api.broker.size()).to.equal(0)
  })

  it('a body that is not application/json, or not UTF-8, is a 415', async () => {
    for (const type of [
      undefined,
      'text/plain',
      'application/x-www-form-urlencoded',
      'application/json; charset=latin1',
    ]) {
      const r = await api.server.call('POST', '/api/tasks', {
        body: '{"name": "t.add", "args": [1, 2]}',
        headers: type ? { 'content-type': type } : {},
      })
      expect(r.status, String(type)).to.equal(415)
      expect(r.json.error.code).to.equal('ERR_WORQ_HTTP_CONTENT_TYPE')
    }
    expect(await api.broker.size()).to.equal(0)
  })

  it('a body over the limit is a 413, told by Content-Length or counted as it streams', async () => {
    const big = JSON.stringify({ name: 't.echo', args: ['x'.repeat(100 * 1024)] })
    const declared = await api.server.call('POST', '/api/tasks', {
      body: big,
      headers: { 'content-type': 'application/json' },
    })
    expect(declared.status).to.equal(413)
    expect(declared.json.error.code).to.equal('ERR_WORQ_HTTP_BODY_TOO_LARGE')
    expect(declared.json.error.message).to.contain(`${64 * 1024} bytes`)
    // Chunked: no Content-Length, so the limit is counted as the body arrives.
    const streamed = await new Promise<number>((resolve, reject) => {
      const port = Number(new URL(api.server.base).port)
      const req = request(
        {
          host: '127.0.0.1',
          port,
          method: 'POST',
          path: '/api/tasks',
          headers: { 'content-type': 'application/json' },
        },
        res => {
          res.resume()
          resolve(res.statusCode!)
        },
      )
      req.on('error', reject)
      let sent = 0
      const chunk = Buffer.alloc(16 * 1024, 0x20)
      const write = () => {
        while (sent < 1024 * 1024 && !req.destroyed) {
          sent += chunk.length
          if (!req.write(chunk)) return void req.once('drain', write)
        }
        req.end()
      }
      write()
    })
    expect(streamed).to.equal(413)
    expect(await api.broker.size()).to.equal(0)
  })

  it('a duplicate id is a 409 and the first task stays', async () => {
    const first = await api.server.call('POST', '/api/tasks', {
      json: { name: 't.add', args: [1, 2], options: { id: 'once' } },
    })
    expect(first.status).to.equal(201)
    const again = await api.server.call('POST', '/api/tasks', {
      json: { name: 't.add', args: [3, 4], options: { id: 'once' } },
    })
    expect(again.status).to.equal(409)
    expect(again.json.error.code).to.equal('ERR_WORQ_DUPLICATE_TASK')
    expect((await api.broker.task('once'))!.args).to.deep.equal([1, 2])
    expect(await api.broker.cancel('once')).to.equal(true)
  })
})
