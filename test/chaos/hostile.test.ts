/**
 * Hostile input on the wire: records written straight into a queue's keys (docs/redis.md: a task
 * record is `<state><attempts made>:<header JSON>\n<payload>` in `t:<id>`, its id LPUSHed on
 * `wait`), side by side with good tasks that a worker reserves in the same exchanges. Each hostile
 * record must end as a failed task with a message that says why (or, if it is harmless, run
 * without harm), the worker must not report errors or stop, the good tasks must complete, and no
 * task may get two outcomes. Nothing from the wire is evaluated: superjson revives only plain data,
 * a fixed list of built-in classes and worq's own references (lib/serializer.ts).
 */
import { expect } from 'chai'
import fc from 'fast-check'
import { Redis } from 'ioredis'
import { getBroker, task, WorkerPool, type Deferred } from '../../lib/index.js'
import { watchOutcomes, type OutcomeWatch } from '../helpers/chaos-outcomes.js'
import {
  CLEAR,
  custom,
  echoBroker,
  expectCompletedOrClear,
  expectGood,
  interleave,
  outcomesOf,
  payloadMutations,
  polluted,
  settledWithin,
} from '../helpers/hostile.js'
import { redisUrl } from '../helpers/redis-server.js'
import { uniqueQueue } from '../helpers/util.js'

/** A fake client id in the headers: the watcher sees the outcomes published to it. */
const CLIENT = 'hostile'

const header = (fields: Record<string, unknown> = {}) =>
  JSON.stringify({
    n: 'echo',
    r: 60_000,
    h: 100,
    a: 1,
    b: ['fixed', 0, 0, 0],
    u: 0,
    e: 0,
    g: 'x',
    c: CLIENT,
    ...fields,
  })
const record = (payload: string, fields?: Record<string, unknown>) =>
  `E0:${header(fields)}\n${payload}`

/** A queue with a worker that exposes echo (returns its argument) and len (its length). */
async function rig(maxPayloadBytes = 1 << 20) {
  const url = await redisUrl()
  const redis = new Redis(url)
  const queue = uniqueQueue('fuzz')
  const broker = echoBroker(url, queue, maxPayloadBytes)
  // A raw LPUSH wakes no blocked worker, and a later enqueue onto a non-empty line wakes none
  // either (only the empty → non-empty step does): a short blockTimeout bounds that wait.
  const pool = new WorkerPool(broker, { concurrency: 8, sweepInterval: 100, blockTimeout: 100 })
  const errors: string[] = []
  pool.on('pool:error', e => errors.push(e.message))
  const watch = await watchOutcomes(url, queue)
  const key = (s: string) => `worq:{${queue}}:${s}`
  /**
   * Writes the records, interleaved with good calls of echo, so that the worker reserves both in
   * the same exchanges; returns the good Deferreds. A raw LPUSH wakes no blocked worker, the good
   * calls (enqueue.lua) do.
   */
  async function inject(records: Record<string, string>): Promise<Array<Deferred<unknown>>> {
    const f = task(broker.queue().echo, { heartrate: 100 })
    return interleave(
      records,
      async (id, rec) => {
        await redis.set(key(`t:${id}`), rec)
        await redis.lpush(key('wait'), id)
      },
      arg => f(arg) as Promise<Deferred<unknown>>,
    )
  }
  /** Resolves once no record of `ids` is live (pending or enqueued, or processing); bounded. */
  const settled = (ids: string[], ms?: number) =>
    settledWithin(async () => {
      const recs = await redis.mget(ids.map(id => key(`t:${id}`)))
      return ids.filter((_, i) => /^[EP]/.test(recs[i] ?? ''))
    }, ms)
  return {
    queue,
    broker,
    /** Puts an id in line without a record. */
    pushId: (id: string) => redis.lpush(key('wait'), id),
    pool,
    errors,
    watch,
    inject,
    settled,
    outcomes: (ids: string[]) => outcomesOf(broker, queue, ids),
    async close() {
      watch.close()
      await pool.stop({ timeout: 1000 })
      await broker.close()
      redis.disconnect()
    },
  }
}

function expectOneOutcomeEach(watch: OutcomeWatch) {
  expect(watch.duplicates(), 'tasks with two recorded outcomes').to.deep.equal([])
}

describe('chaos: hostile input on the wire', function () {
  this.timeout(120_000)

  it('malformed, truncated, oversized and prototype-walking records fail their task clearly; the worker and other tasks go on', async () => {
    const r = await rig()
    const deep = '['.repeat(5000) + ']'.repeat(5000)
    const h = header()
    const mustFail: Record<string, string> = {
      garbage: '\u0000\u0001not a record',
      'bad-state': 'Z0:' + h + '\n{"json":[1]}',
      'bad-header': 'E0:{not json\n{"json":[1]}',
      'header-not-object': 'E0:[1,2]\n{"json":[1]}',
      'header-missing-name': record('{"json":[1]}', { n: undefined }),
      // Numbers out of range in the very shape the scripts read without decoding the header
      // (ready.lua plain_meta() checks them as text).
      'heartrate-zero': record('{"json":[1]}', { h: 0 }),
      'heartrate-past-max': record('{"json":[1]}', { h: 2147483648 }),
      'attempts-zero': record('{"json":[1]}', { a: 0 }),
      'result-timeout-past-max': record('{"json":[1]}', { r: 99999999999 }),
      'delay-past-max': record('{"json":[1]}', { b: ['fixed', 2147483648, 0, 0] }),
      'jitter-above-one': record('{"json":[1]}', { b: ['fixed', 0, 1.5, 0] }),
      truncated: 'E0:' + h.slice(0, 20),
      'no-newline': 'E0:' + h,
      'no-colon': 'E' + h,
      'bad-payload': record('not json at all'),
      'payload-not-list': record('{"json":{"a":1}}'),
      'payload-truncated': record('{"json":[1,2'),
      'unknown-class': record(`{"json":[{}],"meta":{"values":{"0":[["class","Evil"]]}}}`),
      'unknown-custom': record(`{"json":[{}],${custom('Evil')}}`),
      'ref-out-of-range': record(`{"json":[{"r":99}],${custom('worq.ref')}}`),
      'ref-inline-garbage': record(`{"json":[{"o":"cnot json"}],${custom('worq.ref')}}`),
      'failure-without-fields': record(`{"json":[{}],${custom('worq.failure')}}`),
      'bigint-garbage': record('{"json":["12abc"],"meta":{"values":{"0":["bigint"]}}}'),
      'regexp-garbage': record('{"json":["/(/"],"meta":{"values":{"0":["regexp"]}}}'),
      'meta-path-__proto__': record(
        '{"json":[{"a":1}],"meta":{"values":{"0.__proto__.polluted":["undefined"]}}}',
      ),
      'meta-path-constructor.prototype': record(
        '{"json":[{"a":1}],"meta":{"values":{"0.constructor.prototype.polluted":["undefined"]}}}',
      ),
      'name-__proto__': record('{"json":[1]}', { n: '__proto__' }),
      'name-constructor': record('{"json":[1]}', { n: 'constructor' }),
      'name-prototype': record('{"json":[1]}', { n: 'prototype' }),
      'name-toString': record('{"json":[1]}', { n: 'toString' }),
      'name-hasOwnProperty': record('{"json":[1]}', { n: 'hasOwnProperty' }),
      'name-echo.__proto__': record('{"json":[1]}', { n: 'echo.__proto__' }),
      'name-__proto__.polluted': record('{"json":[1]}', { n: '__proto__.polluted' }),
      'name-unknown': record('{"json":[1]}', { n: 'no.such.task' }),
      'deep-payload': record(`{"json":[${deep}]}`),
      // 3 MB of argument, over the worker's 1 MB maxPayloadBytes: echo's result is refused.
      oversized: record(`{"json":["${'x'.repeat(3 << 20)}"]}`),
    }
    // Harmless, however odd: they run, and must not reach Object.prototype.
    const harmless: Record<string, string> = {
      'json-__proto__-key': record('{"json":[{"__proto__":{"polluted":"yes"}}]}'),
      'json-constructor-key': record('{"json":[{"constructor":{"prototype":{"polluted":"yes"}}}]}'),
      'invalid-date': record('{"json":["not a date"],"meta":{"values":{"0":["Date"]}}}'),
      'attempts-made-huge': record('{"json":[1]}').replace(/^E0:/, 'E99999:'),
      'heartrate-at-max': record('{"json":[1]}', { h: 2147483647 }),
      'jitter-fraction': record('{"json":[1]}', { b: ['fixed', 0, 0.25, 0] }),
    }
    try {
      const good = await r.inject({ ...mustFail, ...harmless })
      await r.pushId('no-record-at-all')
      const t0 = Date.now()
      await r.pool.start()
      await expectGood(good)
      const ids = [...Object.keys(mustFail), ...Object.keys(harmless)]
      await r.settled(ids)
      const got = await r.outcomes(ids)
      const lines = Object.entries(got).map(([id, o]) => `${id} → ${o}`)
      console.log(
        `      ${ids.length + 1} hostile records tried (good tasks done in ${Date.now() - t0} ms):\n        ${lines.join('\n        ')}`,
      )
      for (const id of Object.keys(mustFail)) {
        expect(got[id], id).to.match(new RegExp(`^(${CLEAR.join('|')}): .{10,}`))
      }
      for (const name of ['__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty'])
        expect(got[`name-${name}`]).to.match(/^NoSuchTask: .*exposes a task named/)
      expect(got.oversized).to.match(/^PayloadTooLarge/)
      for (const id of Object.keys(harmless)) expect(got[id], id).to.not.match(/^no outcome/)
      expect(polluted().polluted).to.equal(undefined)
      expect(r.errors).to.deep.equal([])
      expectOneOutcomeEach(r.watch)
    } finally {
      await r.close()
    }
  })

  it('fuzz: random mutations of a real record (payload bytes, truncation anywhere) never stop the worker', async () => {
    const r = await rig()
    // A real record, written by the real enqueue on a queue no worker serves.
    const template = uniqueQueue('tpl')
    const producer = getBroker(await redisUrl(), template)
    const d = await producer.queue().echo({
      when: new Date(0),
      tags: new Set(['a', 'b']),
      m: new Map([[1, { deep: [1n, undefined, /x/g] }]]),
      s: 'text',
    })
    const raw = new Redis(await redisUrl())
    const rec = (await raw.get(`worq:{${template}}:t:${d!.id}`))!
    await producer.purge()
    await producer.close()
    raw.disconnect()
    const nl = rec.indexOf('\n')
    const head = rec.slice(0, nl + 1).replace(/"c":"[^"]*"/, `"c":"${CLIENT}"`)
    const body = rec.slice(nl + 1)

    const mutation = fc.oneof(
      // Anywhere in the record: cut it short.
      fc
        .nat()
        .map(i => (h: string, b: string) => (h + b).slice(0, 1 + (i % (h.length + b.length - 1)))),
      // In the payload: replace, insert or delete characters.
      payloadMutations().map(m => (h: string, b: string) => h + m(b)),
    )
    const RUNS = Number(process.env.WORQ_FUZZ_RUNS ?? 20)
    const PER = 60
    let tried = 0
    const tally = new Map<string, number>()
    try {
      await r.pool.start()
      await fc.assert(
        fc.asyncProperty(fc.array(mutation, { minLength: PER, maxLength: PER }), async muts => {
          const records: Record<string, string> = {}
          muts.forEach((m, i) => (records[`m${tried + i}`] = m(head, body)))
          tried += muts.length
          const good = await r.inject(records)
          await expectGood(good)
          const ids = Object.keys(records)
          await r.settled(ids)
          expectCompletedOrClear(await r.outcomes(ids), records, tally)
          expect(r.errors).to.deep.equal([])
          expectOneOutcomeEach(r.watch)
        }),
        { numRuns: RUNS, endOnFailure: true },
      )
      expect(polluted().polluted).to.equal(undefined)
      console.log(
        `      fuzz: ${tried} mutated records tried: ${JSON.stringify(Object.fromEntries(tally))}`,
      )
    } finally {
      await r.close()
    }
  })

  it('header values of the right JSON type but out of range (fractional or negative keep, bad deps) fail their task, not the exchange', async () => {
    const r = await rig()
    const poison: Record<string, string> = {
      'keep-fractional': record('{"json":[1]}', { r: 1.5 }),
      'keep-negative': record('{"json":[1]}', { r: -1 }),
      'deps-string': record('{"json":[1]}', { d: 'abc' }),
      'deps-number-list': record('{"json":[1]}', { d: [1] }),
      'heartrate-negative': record('{"json":[1]}', { h: -5 }),
      'timeout-over-32-bits': record('{"json":[1]}', { x: { timeout: 1e15 } }),
      // exchange.lua takes '' for a known state (string.find(s, '') is 1): skipped, never failed.
      'empty-record': '',
    }
    try {
      const good = await r.inject(poison)
      await r.pool.start()
      const values = await Promise.all(
        good.map(d => d.result(10_000).catch((e: Error) => `${e.name}: ${e.message}`)),
      )
      const ids = Object.keys(poison)
      await r.settled(ids).catch(() => undefined)
      const got = await r.outcomes(ids)
      console.log(
        `      header poison: good tasks → ${JSON.stringify(values).slice(0, 300)}\n        ${Object.entries(
          got,
        )
          .map(([id, o]) => `${id} → ${o}`)
          .join('\n        ')}\n        pool errors: ${r.errors.length} ${r.errors[0] ?? ''}`,
      )
      expect(values.at(-1)).to.equal('last')
      expect(values.filter(v => typeof v === 'string' && /TaskExpired/.test(v))).to.deep.equal([])
      for (const id of ids) expect(got[id], id).to.match(/^BadMessage: /)
      expect(r.errors).to.deep.equal([])
      expectOneOutcomeEach(r.watch)
    } finally {
      await r.close()
    }
  })
})
