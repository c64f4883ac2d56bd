/**
 * Fuzzing a live server (fast-check): random bodies to POST /api/tasks and random methods, paths
 * (in origin and absolute form) and query strings to every route, against a real Redis. Nothing answers 5xx, every error is the API's JSON
 * error, and a task is enqueued exactly when the answer is 201. docs/http.md publishes the counts.
 */
import { expect } from 'chai'
import fc from 'fast-check'
import { redisUrl } from '../helpers/redis-server.js'
import { serveApi, type ApiFixture } from '../helpers/http-fixture.js'

/** Requests tried per property. */
export const LIVE_RUNS = 400

describe('http: fuzzing a live server (fast-check, real Redis)', function () {
  this.timeout(120_000)
  let api: ApiFixture
  before(async () => {
    api = await serveApi(await redisUrl(), { submit: ['t.add', 't.echo'] }, { worker: false })
  })
  after(() => api.close())

  function checkError(r: { status: number; json: any; text: string }, method = 'GET'): void {
    expect(r.status, r.text).to.be.below(500)
    // A HEAD's answer has no body: its status is the check.
    if (method === 'HEAD') expect(r.text).to.equal('')
    else if (r.status >= 400) {
      expect(r.json?.error?.code, r.text).to.match(/^ERR_WORQ_/)
      expect(r.json.error.message).to.be.a('string')
    }
  }

  it(`POST /api/tasks: ${LIVE_RUNS} bodies; a task is enqueued exactly for each 201`, async () => {
    let created = 0
    const body = fc.oneof(
      fc.jsonValue({ maxDepth: 3 }).map(v => JSON.stringify(v)),
      fc
        .record(
          {
            name: fc.constantFrom(
              't.add',
              't.echo',
              't.hold',
              'x',
              '__proto__',
              'constructor.prototype',
            ),
            args: fc.oneof(
              fc.array(fc.jsonValue({ maxDepth: 2 }), { maxLength: 3 }),
              fc.jsonValue(),
            ),
            options: fc.dictionary(
              fc.constantFrom(
                'priority',
                'delay',
                'attempts',
                'id',
                'metadata',
                'resultTimeout',
                '__proto__',
                'heartrate',
              ),
              fc.jsonValue({ maxDepth: 1 }),
            ),
            queue: fc.constantFrom(api.broker.name, 'other', ''),
          },
          { requiredKeys: ['name'] },
        )
        .map(v => JSON.stringify(v)),
      fc.uint8Array({ maxLength: 48 }).map(b => Buffer.from(b)),
    )
    await fc.assert(
      fc.asyncProperty(body, async b => {
        const r = await api.server.call('POST', '/api/tasks', {
          body: b,
          headers: { 'content-type': 'application/json' },
        })
        checkError(r)
        if (r.status === 201) created++
      }),
      { numRuns: LIVE_RUNS },
    )
    expect(await api.broker.size()).to.equal(created)
    await api.broker.purge()
  })

  it(`every route: ${LIVE_RUNS} paths and query strings; never a 5xx, and nothing is enqueued`, async () => {
    await api.broker.pause()
    const segment = fc.oneof(
      fc.constantFrom(
        'api',
        'tasks',
        'queues',
        api.broker.name,
        'retry',
        'pause',
        'resume',
        'events',
        'metrics',
        '..',
        '%2e%2e',
        '%00',
        '%E0%A4%A',
        '',
      ),
      fc.stringMatching(/^[\w.~%-]{0,8}$/),
    )
    const query = fc.array(
      fc.tuple(
        fc.constantFrom(
          'queue',
          'status',
          'name',
          'limit',
          'offset',
          'olderThan',
          'confirm',
          'minutes',
          'x',
        ),
        fc.oneof(
          fc.stringMatching(/^[\w.,:%+-]{0,10}$/),
          fc.constantFrom(api.broker.name, '%FF', '-1', '1e9'),
        ),
      ),
      { maxLength: 3 },
    )
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom('GET', 'HEAD', 'POST', 'DELETE'),
        // The request target in origin form, or in absolute form (as sent to a proxy).
        fc.constantFrom('', 'http://127.0.0.1', 'HTTPS://x.test:1', 'http://[::1]'),
        fc.array(segment, { minLength: 1, maxLength: 5 }),
        query,
        async (method, origin, parts, q) => {
          const path = '/' + parts.join('/')
          // A stream does not end by itself; its HEAD does.
          if (path.startsWith('/api/events') && method !== 'HEAD') return
          const search = q.map(([k, v]) => `${k}=${v}`).join('&')
          const r = await api.server.call(method, origin + (search ? `${path}?${search}` : path))
          checkError(r, method)
        },
      ),
      { numRuns: LIVE_RUNS },
    )
    await api.broker.resume()
    expect(await api.broker.size()).to.equal(0)
  })
})
