/**
 * Hostile input to the API, against a real Redis: each request gets a clear 4xx that names what to
 * change, and none of them changes anything (the queue holds no task afterwards).
 */
import { expect } from 'chai'
import { request } from 'node:http'
import { SuperJSON } from 'superjson'
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

  it('tagged values whose reading was quadratic or worse (a million-digit BigInt held the event loop 0.9 s, a long meta path 111 s, nested shared pairs for ever) are 400s naming the limit, answered at once', async () => {
    // The default bodyLimit, 1 MiB: room for the largest of them.
    const big = await serveApi(api.broker.url, { submit: ['t.echo'] }, { worker: false })
    try {
      const send = async (json: unknown, meta: unknown) => {
        const started = Date.now()
        const r = await big.server.call('POST', '/api/tasks', {
          json: { name: 't.echo', args: [{ $superjson: { json, meta } }] },
        })
        return { ...r, ms: Date.now() - started }
      }
      /** Levels of [x, x]: the json holds one copy, the references make the second. */
      const pairs = (levels: number) => {
        let json: unknown = 0
        const refs: Record<string, string[]> = {}
        for (let i = 0; i < levels; i++) {
          json = [json, 0]
          const at = Array(i).fill('0')
          refs[[...at, '0'].join('.')] = [[...at, '1'].join('.')]
        }
        return { json, refs }
      }
      const kids = (n: number, type: unknown[]) =>
        Object.fromEntries(Array.from({ length: n }, (_, i) => [String(i), type]))
      const refused: Array<[what: string, answer: Awaited<ReturnType<typeof send>>, RegExp]> = [
        [
          'a BigInt of a million digits',
          await send('9'.repeat(1_000_000), { values: ['bigint'], v: 1 }),
          /a BigInt at "" of 1000000 characters; the API takes BigInts of at most 2048 characters/,
        ],
        [
          'a BigInt inside a Map',
          await send([['k', '9'.repeat(2049)]], { values: ['map', { '0.1': ['bigint'] }], v: 1 }),
          /a BigInt at "0\.1" of 2049 characters/,
        ],
        [
          'one path of 100 000 segments with 10 000 children',
          await send(1, {
            values: { ['a.'.repeat(100_000) + 'a']: ['map', kids(10_000, ['bigint'])] },
          }),
          /a path of more than 64 segments .* at most 64/,
        ],
        [
          '20 000 shared references into the far end of a Set',
          await send([Array.from({ length: 20_000 }, () => ({})), {}], {
            values: { '0': ['set'] },
            referentialEqualities: {
              1: Array.from({ length: 19_999 }, (_, i) => `0.${i + 1}`),
            },
            v: 1,
          }),
          /shared references \("referentialEqualities"\) .* at most 1000000 elements/,
        ],
        [
          '40 levels of [x, x] (enqueued and answered, it was written out as 2^40 values)',
          await send(pairs(40).json, { referentialEqualities: pairs(40).refs, v: 1 }),
          /written out each time they appear, would make it more than 1000000 values/,
        ],
      ]
      for (const [what, r, message] of refused) {
        expect(r.status, `${what}: ${r.text.slice(0, 300)}`).to.equal(400)
        expect(r.json.error.code, what).to.equal('ERR_WORQ_HTTP_VALUE_LIMIT')
        expect(r.json.error.message, what).to.match(/^args\[0\] has /)
        expect(r.json.error.message, what).to.match(message)
        expect(r.ms, what).to.be.below(1000)
      }
      // Superjson's reading of a value annotated inside another walked the Set each time.
      const nested = await send([Array.from({ length: 10 }, (_, i) => i)], {
        values: { '0': ['set'], '0.9': ['bigint'] },
        v: 1,
      })
      expect(nested.status).to.equal(400)
      expect(nested.json.error.message).to.match(
        /^args\[0\] is a tagged value that cannot be read: .*annotates a value inside another/,
      )
      expect(await big.broker.size()).to.equal(0)
      // At the limits, the values are taken and kept as they were sent.
      const largest = BigInt('9'.repeat(2048))
      const ok = await send('9'.repeat(2048), { values: ['bigint'], v: 1 })
      expect(ok.status, ok.text.slice(0, 300)).to.equal(201)
      expect((await big.broker.task(ok.json.id))!.args).to.deep.equal([largest])
      const shared = { shared: true }
      const graph = [shared, new Set([shared]), new Map([[1, shared]])]
      const { json, meta } = SuperJSON.serialize(graph)
      const sharedOk = await send(json, meta)
      expect(sharedOk.status, sharedOk.text).to.equal(201)
      const [a, set, map] = (await big.broker.task(sharedOk.json.id))!.args![0] as [
        object,
        Set<object>,
        Map<number, object>,
      ]
      expect([...set][0]).to.equal(a)
      expect(map.get(1)).to.equal(a)
    } finally {
      await big.close()
    }
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
