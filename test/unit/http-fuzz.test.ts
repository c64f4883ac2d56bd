/**
 * Fuzzing the parsers of worq/http with fast-check: whatever bytes, JSON, query strings, submit
 * bodies, Last-Event-IDs and paths come in, each parser answers a value or an HttpError with a
 * 4xx, never another kind of error, and what it lets through holds no key that walks prototypes.
 * docs/http.md publishes the counts (RUNS per property).
 */
import { expect } from 'chai'
import fc from 'fast-check'
import { parseJsonBody } from '../../lib/http/body.js'
import { HttpError } from '../../lib/http/errors.js'
import { parseQuery } from '../../lib/http/query.js'
import { match } from '../../lib/http/router.js'
import { routeTable } from '../../lib/http/routes/index.js'
import { checkSubmit } from '../../lib/http/routes/tasks.js'
import { resumePoints } from '../../lib/http/sse.js'
import { fromWire } from '../../lib/http/values.js'

/** Inputs tried per property. */
export const RUNS = 20_000

const FORBIDDEN = ['__proto__', 'constructor', 'prototype']

/** Runs `fn`; a throw must be an HttpError with a 4xx status. */
function only4xx<T>(fn: () => T): T | HttpError {
  try {
    return fn()
  } catch (err) {
    if (!(err instanceof HttpError)) throw err
    expect(err.status).to.be.within(400, 499)
    expect(err.code).to.match(/^ERR_WORQ_/)
    expect(err.message.length).to.be.greaterThan(10)
    return err
  }
}

function hasForbiddenKey(v: unknown, depth = 0): boolean {
  if (typeof v !== 'object' || v === null || depth > 80) return false
  if (Array.isArray(v)) return v.some(x => hasForbiddenKey(x, depth + 1))
  return Object.keys(v).some(
    k => FORBIDDEN.includes(k) || hasForbiddenKey((v as any)[k], depth + 1),
  )
}

/** JSON text whose objects sometimes use hostile keys. */
const hostileJson = fc
  .letrec(tie => ({
    value: fc.oneof(
      { depthSize: 'small' },
      fc.jsonValue({ maxDepth: 2 }),
      fc.array(tie('value'), { maxLength: 4 }),
      fc.dictionary(
        fc.oneof(fc.constantFrom(...FORBIDDEN, 'name', 'args', 'options'), fc.string()),
        tie('value'),
        {
          maxKeys: 4,
        },
      ),
    ),
  }))
  .value.map(v => JSON.stringify(v) ?? 'null')

describe('http: fuzzing the parsers (fast-check)', function () {
  this.timeout(120_000)

  it(`parseJsonBody: ${RUNS} byte strings and ${RUNS} JSON texts with hostile keys`, () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), bytes => {
        const out = only4xx(() => parseJsonBody(bytes))
        if (!(out instanceof HttpError)) expect(hasForbiddenKey(out)).to.equal(false)
      }),
      { numRuns: RUNS },
    )
    fc.assert(
      fc.property(hostileJson, text => {
        const out = only4xx(() => parseJsonBody(Buffer.from(text)))
        if (out instanceof HttpError) {
          // Valid JSON is refused only for a hostile key or depth, with a code that says which.
          expect(out.code).to.be.oneOf(['ERR_WORQ_HTTP_FORBIDDEN_KEY', 'ERR_WORQ_HTTP_BAD_REQUEST'])
          expect(
            FORBIDDEN.some(k => text.includes(`"${k}"`)) ||
              out.code === 'ERR_WORQ_HTTP_BAD_REQUEST',
          ).to.equal(true)
        } else {
          expect(hasForbiddenKey(out)).to.equal(false)
          expect(out).to.deep.equal(JSON.parse(text))
        }
      }),
      { numRuns: RUNS },
    )
  })

  it(`parseQuery: ${RUNS} query strings`, () => {
    const allowed = ['queue', 'status', 'name', 'limit']
    const part = fc.oneof(
      fc.string({ maxLength: 12 }),
      fc.constantFrom(
        'queue',
        'status',
        'name',
        'limit',
        '%',
        '%E0%A4%A',
        '%FF',
        '%00',
        '+',
        '=',
        '&',
      ),
    )
    fc.assert(
      fc.property(fc.array(fc.tuple(part, part), { maxLength: 5 }), pairs => {
        const search = pairs.map(([k, v]) => `${k}=${v}`).join('&')
        const out = only4xx(() => parseQuery(search, allowed))
        if (!(out instanceof HttpError)) {
          for (const [k, v] of out) {
            expect(allowed).to.include(k)
            expect(v).to.not.match(/[\u0000-\u001f\u007f]/) // eslint-disable-line no-control-regex
          }
        }
      }),
      { numRuns: RUNS },
    )
  })

  it(`checkSubmit and fromWire: ${RUNS} bodies`, () => {
    const body = fc.oneof(
      fc.anything(),
      fc.record(
        {
          queue: fc.oneof(fc.string(), fc.anything()),
          name: fc.oneof(fc.constantFrom('t.add', 'a.b.c', 'x..y', ''), fc.string()),
          args: fc.oneof(fc.array(fc.jsonValue({ maxDepth: 2 }), { maxLength: 4 }), fc.anything()),
          options: fc.oneof(
            fc.dictionary(
              fc.constantFrom(
                'priority',
                'delay',
                'attempts',
                'id',
                'metadata',
                'resultTimeout',
                'heartrate',
              ),
              fc.anything(),
            ),
            fc.anything(),
          ),
        },
        { requiredKeys: [] },
      ),
    )
    const tagged = fc.record({
      $superjson: fc.record(
        { json: fc.jsonValue({ maxDepth: 2 }), meta: fc.anything() },
        { requiredKeys: [] },
      ),
    })
    fc.assert(
      fc.property(body, tagged, (b, t) => {
        const out = only4xx(() => checkSubmit(b))
        if (!(out instanceof HttpError))
          expect(out.name).to.match(/^[A-Za-z_$][\w$-]*(\.[A-Za-z_$][\w$-]*)*$/)
        only4xx(() => fromWire(t, 'args[0]'))
      }),
      { numRuns: RUNS },
    )
  })

  it(`resumePoints and the router: ${RUNS} Last-Event-IDs and ${RUNS} paths`, () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 40 }), header => {
        const out = only4xx(() => resumePoints(header, ['a', 'b']))
        if (!(out instanceof HttpError)) for (const id of out.values()) expect(id).to.match(/^\d+$/)
      }),
      { numRuns: RUNS },
    )
    const routes = routeTable({ ends: new Set(), closed: false })
    const segment = fc.oneof(
      fc.constantFrom(
        'api',
        'tasks',
        'queues',
        'retry',
        'pause',
        '..',
        '.',
        '%2F',
        '%E0%A4%A',
        '%00',
        '',
      ),
      fc.string({ maxLength: 8 }),
    )
    fc.assert(
      fc.property(
        fc.constantFrom('GET', 'HEAD', 'POST', 'DELETE', 'PUT'),
        fc.array(segment, { maxLength: 5 }),
        (method, parts) => {
          only4xx(() => match(routes, method, '/' + parts.join('/')))
        },
      ),
      { numRuns: RUNS },
    )
  })
})
