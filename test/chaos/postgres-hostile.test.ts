/**
 * Hostile input on the wire, on postgres://: the columns of task rows that a worker or a caller
 * reads back as written (docs/postgres.md, "Schema and migrations": `payload`, `name`, `metadata`,
 * `progress`, `outcome` are text; `deps` and `backoff` json; the numbers are columns of their own
 * type) rewritten by hand, as another program with write access to the schema could, side by side
 * with good tasks that the worker reserves in the same exchanges. Each hostile row must end as a
 * failed task with a message that says why (or, if it is harmless, run without harm); the worker
 * must not report errors or stop; the good tasks must complete; no task may be ended twice (a
 * trigger the test installs records every row that turns `done`). hostile.test.ts does the same
 * to Redis's records.
 */
import { expect } from 'chai'
import fc from 'fast-check'
import {
  CLEAR,
  custom,
  expectCompletedOrClear,
  expectGood,
  payloadMutations,
  polluted,
} from '../helpers/hostile.js'
import { rig } from '../helpers/postgres-hostile.js'

describe('chaos: hostile input on the wire [postgres]', function () {
  this.timeout(120_000)

  it('malformed, oversized and prototype-walking payloads and names fail their task clearly; the worker and other tasks go on', async () => {
    const r = await rig()
    const deep = '['.repeat(5000) + ']'.repeat(5000)
    const payloads: Record<string, string> = {
      'bad-payload': 'not json at all',
      'empty-payload': '',
      'payload-not-list': '{"json":{"a":1}}',
      'payload-truncated': '{"json":[1,2',
      'unknown-class': `{"json":[{}],"meta":{"values":{"0":[["class","Evil"]]}}}`,
      'unknown-custom': `{"json":[{}],${custom('Evil')}}`,
      'ref-out-of-range': `{"json":[{"r":99}],${custom('worq.ref')}}`,
      'ref-inline-garbage': `{"json":[{"o":"cnot json"}],${custom('worq.ref')}}`,
      'failure-without-fields': `{"json":[{}],${custom('worq.failure')}}`,
      'bigint-garbage': '{"json":["12abc"],"meta":{"values":{"0":["bigint"]}}}',
      'regexp-garbage': '{"json":["/(/"],"meta":{"values":{"0":["regexp"]}}}',
      'meta-path-__proto__':
        '{"json":[{"a":1}],"meta":{"values":{"0.__proto__.polluted":["undefined"]}}}',
      'meta-path-constructor.prototype':
        '{"json":[{"a":1}],"meta":{"values":{"0.constructor.prototype.polluted":["undefined"]}}}',
      'deep-payload': `{"json":[${deep}]}`,
      // 3 MB of argument, over the worker's 1 MB maxPayloadBytes: echo's result is refused.
      oversized: `{"json":["${'x'.repeat(3 << 20)}"]}`,
    }
    const names: Record<string, string> = {}
    for (const name of [
      '__proto__',
      'constructor',
      'prototype',
      'toString',
      'hasOwnProperty',
      'echo.__proto__',
      '__proto__.polluted',
      'no.such.task',
      '',
    ])
      names[`name-${name}`] = name
    // Harmless, however odd: they run, and must not reach Object.prototype.
    const harmless: Record<string, string> = {
      'json-__proto__-key': '{"json":[{"__proto__":{"polluted":"yes"}}]}',
      'json-constructor-key': '{"json":[{"constructor":{"prototype":{"polluted":"yes"}}}]}',
      'invalid-date': '{"json":["not a date"],"meta":{"values":{"0":["Date"]}}}',
    }
    try {
      const good = [
        ...(await r.inject({ ...payloads, ...harmless }, 'payload')),
        ...(await r.inject(names, 'name')),
      ]
      const t0 = Date.now()
      await r.pool.start()
      await expectGood(good)
      const mustFail = [...Object.keys(payloads), ...Object.keys(names)]
      const ids = [...mustFail, ...Object.keys(harmless)]
      await r.settled(ids)
      const got = await r.outcomes(ids)
      const lines = Object.entries(got).map(([id, o]) => `${id} → ${o}`)
      console.log(
        `      ${ids.length} hostile rows tried (good tasks done in ${Date.now() - t0} ms):\n        ${lines.join('\n        ')}`,
      )
      for (const id of mustFail)
        expect(got[id], id).to.match(new RegExp(`^(${CLEAR.join('|')}): .{10,}`))
      for (const name of ['__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty'])
        expect(got[`name-${name}`]).to.match(/^NoSuchTask: .*exposes a task named/)
      expect(got.oversized).to.match(/^PayloadTooLarge/)
      // An echo of an own `__proto__` key is refused as a result (UnserializableResult): an
      // outcome all the same.
      for (const id of Object.keys(harmless))
        expect(got[id], id).to.match(new RegExp(`^(completed|${CLEAR.join('|')})`))
      expect(polluted().polluted).to.equal(undefined)
      expect(r.errors).to.deep.equal([])
      expect(await r.endedTwice(), 'rows ended twice').to.deep.equal([])
    } finally {
      await r.close()
    }
  })

  it('fuzz: random mutations of a real payload never stop the worker', async () => {
    const r = await rig()
    // A real payload, written by the real enqueue.
    const probe = await r.broker.queue().echo({
      when: new Date(0),
      tags: new Set(['a', 'b']),
      m: new Map([[1, { deep: [1n, undefined, /x/g] }]]),
      s: 'text',
    })
    const { rows } = await r.db.query<{ payload: string }>(
      `SELECT payload FROM worq.tasks WHERE queue = $1 AND id = $2`,
      [r.queue, probe!.id],
    )
    await r.broker.purge()
    const body = rows[0]!.payload
    // PostgreSQL's text holds no NUL: a mutation never writes one (the server would refuse it).
    const text = fc.string({ minLength: 1, maxLength: 4 }).map(s => s.replace(/\0/g, ' '))
    const mutation = fc.oneof(
      fc.nat().map(i => (b: string) => b.slice(0, i % b.length)),
      payloadMutations(text),
    )
    const RUNS = Number(process.env.WORQ_FUZZ_RUNS ?? 20)
    const PER = 30
    let tried = 0
    const tally = new Map<string, number>()
    try {
      await r.pool.start()
      await fc.assert(
        fc.asyncProperty(fc.array(mutation, { minLength: PER, maxLength: PER }), async muts => {
          const rows: Record<string, string> = {}
          muts.forEach((m, i) => (rows[`m${tried + i}`] = m(body)))
          tried += muts.length
          // Paused while the rows are rewritten: the running worker takes none of them before.
          await r.broker.pause()
          const good = await r.inject(rows, 'payload')
          await r.broker.resume()
          await expectGood(good)
          const ids = Object.keys(rows)
          await r.settled(ids)
          expectCompletedOrClear(await r.outcomes(ids), rows, tally)
          expect(r.errors).to.deep.equal([])
        }),
        { numRuns: RUNS, endOnFailure: true },
      )
      expect(polluted().polluted).to.equal(undefined)
      expect(await r.endedTwice(), 'rows ended twice').to.deep.equal([])
      console.log(
        `      fuzz: ${tried} mutated payloads tried: ${JSON.stringify(Object.fromEntries(tally))}`,
      )
    } finally {
      await r.close()
    }
  })
})
