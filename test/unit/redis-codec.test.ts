import { expect } from 'chai'
import type { NewTask } from '../../lib/backends/backend.js'
import {
  decodeRecord,
  decodeReserved,
  encodeTask,
  parseHandover,
} from '../../lib/backends/redis/codec.js'
import { finishTimes, histogramFields } from '../../lib/backends/redis/histograms.js'
import { decodeEnqueueReply, decodeExchangeReply } from '../../lib/backends/redis/replies.js'
import { newTask } from '../helpers/new-task.js'

/** A task of name `name` as a queue's defaults make it, changed by `over`. */
function task(name: string, over: Partial<NewTask> = {}): NewTask {
  return newTask('id', { name, resultTimeout: 3_600_000, ...over })
}

/** Checks that `entry` is the record of `t` for `client`. */
function expectRecord(entry: ReturnType<typeof encodeTask>, t: NewTask, client: string): void {
  expect(decodeRecord(t.id, entry.body)).to.deep.equal(t)
  const [line1, line2] = entry.meta.split('\n')
  const [, heartrate, keep, to] = line1!.split('|')
  expect([heartrate, keep, to]).to.deep.equal([
    String(t.heartrate),
    String(t.ignoreResult ? 0 : t.resultTimeout),
    t.ignoreResult ? '' : client,
  ])
  expect(line2).to.equal(`${t.name}|1234|${t.attempts}|${t.priority}`)
  expect(JSON.parse(entry.body.slice(3, entry.body.indexOf('\n')))).to.include(
    t.ignoreResult ? { i: 1 } : { c: client },
  )
}

describe('the Redis record of a task (codec)', () => {
  // encodeTask keeps the parts one call shares with the next of the same name and options: each
  // variant differs from the plain call made just before it in one thing, which its record must
  // carry (not the plain call's), and the plain call made after it must not carry it.
  const base = task('add')
  const variants: Array<[string, NewTask, string]> = [
    ['another client', task('add'), 'c2'],
    ['another name', task('math.mul'), 'c1'],
    ['a name to escape', task('a"b\\c.ü'), 'c1'],
    ['attempts', task('add', { attempts: 5 }), 'c1'],
    ['resultTimeout', task('add', { resultTimeout: 1500 }), 'c1'],
    ['heartrate', task('add', { heartrate: 2500 }), 'c1'],
    ['backoff type', task('add', { backoff: { ...base.backoff, type: 'exponential' } }), 'c1'],
    ['backoff delay', task('add', { backoff: { ...base.backoff, delay: 100 } }), 'c1'],
    ['backoff jitter', task('add', { backoff: { ...base.backoff, jitter: 0.5 } }), 'c1'],
    ['backoff maxDelay', task('add', { backoff: { ...base.backoff, maxDelay: 60_000 } }), 'c1'],
    ['ignoreResult', task('add', { ignoreResult: true }), 'c1'],
    ['priority', task('add', { priority: -3 }), 'c1'],
    ['metadata', task('add', { metadata: '{"a":1}' }), 'c1'],
    ['trace', task('add', { trace: '00-ab' }), 'c1'],
    ['onError', task('add', { onError: 'pass' }), 'c1'],
    ['timeout', task('add', { timeout: 500 }), 'c1'],
    ['runAt', task('add', { runAt: 99 }), 'c1'],
    ['a Deferred argument', task('add', { deps: [{ queue: 'q', id: 'x' }] }), 'c1'],
    ['a cache key', task('add', { cache: { key: 'k', ttl: 1000, template: '' } }), 'c1'],
  ]

  for (const [what, t, client] of variants)
    it(`carries what it was given, next to a call that differs in ${what}`, () => {
      expectRecord(encodeTask(base, 'c1', 1234), base, 'c1')
      expectRecord(encodeTask(t, client, 1234), t, client)
      expectRecord(encodeTask(base, 'c1', 1234), base, 'c1')
    })
})

describe('reading a reserved task’s header (codec)', () => {
  // A header laid out as the last plain one is read without JSON.parse (headerOf). Each record
  // below is read twice: right after a record of another name (so in full) and right after a plain
  // record of its own name and options (so the short way, where it applies); both reads must agree.
  const other = encodeTask(task('other.name'), 'c1', 1).body
  const plain = encodeTask(task('add'), 'c1', 1000).body
  const reserved = (record: string) =>
    decodeReserved(['id', 'tok', '1', record, []])[0] as unknown as Record<string, unknown>
  const header = (record: string) => record.slice(3, record.indexOf('\n'))
  const withHeader = (record: string, h: string) =>
    `${record.slice(0, 3)}${h}${record.slice(record.indexOf('\n'))}`
  const next = encodeTask(task('add', { runAt: 5_000 }), 'c1', 2000).body
  const cases: Array<[string, string]> = [
    ['the next plain call', next],
    ['another client', encodeTask(task('add'), 'c2', 3000).body],
    ['ignoreResult', encodeTask(task('add', { ignoreResult: true }), 'c1', 3000).body],
    ['a field the scripts added', withHeader(next, header(next).replace(/}$/, ',"f":"t1"}'))],
    ['a runAt with a fraction', withHeader(next, header(next).replace('"u":5000', '"u":5000.5'))],
    [
      'an enqueue time in exponent form',
      withHeader(next, header(next).replace('"e":2000', '"e":2e3')),
    ],
    ['a generation with an escape', withHeader(next, header(next).replace(/"g":"/, '"g":"\\"'))],
    ['a field before runAt', withHeader(next, header(next).replace('"u":', '"p":2,"u":'))],
    [
      'a Deferred argument',
      encodeTask(task('add', { deps: [{ queue: 'q', id: 'x' }] }), 'c1', 9).body,
    ],
    ['a priority', encodeTask(task('add', { priority: 4 }), 'c1', 9).body],
  ]
  for (const [what, record] of cases)
    it(`reads ${what} the same either way`, () => {
      reserved(other)
      const full = reserved(record)
      reserved(plain)
      const after = reserved(record)
      expect(after).to.deep.equal(full)
      expect(full.dueAt).to.equal(
        Math.max(...[...header(record).matchAll(/"[ue]":([\d.e]+)/g)].map(m => Number(m[1]))),
      )
    })

  it('reads many plain calls in a row the short way, each with its own runAt and enqueue time', () => {
    reserved(plain)
    for (let i = 1; i <= 50; i++) {
      const t = reserved(encodeTask(task('add', { runAt: i * 7 }), 'c1', i * 1000).body)
      expect([t.runAt, t.dueAt, t.name]).to.deep.equal([i * 7, i * 1000, 'add'])
    }
  })
})

describe('a handover message (codec)', () => {
  const a = encodeTask(task('add'), 'c1', 1000).body
  const b = encodeTask(
    task('sum', { payload: '{"json":"a \\"quoted\\"\\nline"}' }),
    'c1',
    1001,
  ).body

  it('reads the text form: five values a task, slots empty or JSON, records as they are', () => {
    const text = ['\x1e', 'a', 'w:n.1', '1', a, '', 'b', 'w:n.2', '2', b, '["0","c{}"]'].join(
      '\x1f',
    )
    expect(parseHandover(text)).to.deep.equal([
      'a',
      'w:n.1',
      '1',
      a,
      [],
      'b',
      'w:n.2',
      '2',
      b,
      ['0', 'c{}'],
    ])
    const tasks = decodeReserved(parseHandover(text))
    expect(tasks.map(t => [t.id, t.token, t.attempt, t.payload])).to.deep.equal([
      ['a', 'w:n.1', 1, task('add').payload],
      ['b', 'w:n.2', 2, '{"json":"a \\"quoted\\"\\nline"}'],
    ])
  })

  it('reads the JSON form of an earlier version the same', () => {
    const json = JSON.stringify(['a', 'w:n.1', '1', a, {}, 'b', 'w:n.2', '2', b, ['0', 'c{}']])
    const text = ['\x1e', 'a', 'w:n.1', '1', a, '', 'b', 'w:n.2', '2', b, '["0","c{}"]'].join(
      '\x1f',
    )
    expect(parseHandover(json)).to.deep.equal(parseHandover(text))
  })

  it('refuses a text message cut short', () => {
    expect(() => parseHandover(['\x1e', 'a', 'w:n.1', '1', a].join('\x1f'))).to.throw(
      TypeError,
      /5 values/,
    )
  })
})

describe('the histogram counts an exchange reports (codec)', () => {
  const finish = (waitMs: number, runMs: number) =>
    ({ id: 'a', token: 't', outcome: 'c1', waitMs, runMs }) as Parameters<
      typeof histogramFields
    >[0][number]

  it('counts each run in its buckets and leaves out a sum of 0', () => {
    // Runs under half a millisecond: their sums round to 0 and are not sent (no HINCRBY).
    expect(histogramFields([finish(0.2, 0.3), finish(0.1, 0.4)])).to.equal('w0=2,t0=2')
    expect(histogramFields([finish(0.2, 3), finish(5, 0.4)])).to.equal(
      'w0=1,ws=5,t2=1,ts=3,w3=1,t0=1',
    )
    expect(histogramFields([])).to.equal('')
  })

  it("lists each finish's times for a call of several, so that a refused one's can be taken back", () => {
    const release = { id: 'r', token: 't', outcome: '', release: true, runMs: 9, waitMs: 9 }
    expect(finishTimes([finish(0.2, 3), release, { id: 'b', token: 't', outcome: 'c1' }])).to.equal(
      '0.2,3;,;,;',
    )
    // One finish's share is all of the call's: nothing more is sent.
    expect(finishTimes([finish(5, 0.4)])).to.equal('')
    expect(finishTimes([])).to.equal('')
  })
})

describe('the flat replies of enqueue and exchange (replies)', () => {
  it('reads an enqueue reply: codes, mine, owed, then the length of mine', () => {
    expect(decodeEnqueueReply([1, 0, 0], 2)).to.deep.equal([[1, 0], [], []])
    expect(decodeEnqueueReply([1, 'q', 'a', 'c1', 'ho', 'v', 3], 1)).to.deep.equal([
      [1],
      ['q', 'a', 'c1'],
      ['ho', 'v'],
    ])
  })

  it('reads an exchange reply: reserved, stale, mine, owed, texts, their lengths and nextDueIn', () => {
    const reserved = ['a', 'w:n.1', 1, 'E0:{}\n[]', '', 'b', 'w:n.2', 2, 'E1:{}\n[]', ['m', '0']]
    const flat = [...reserved, 's1', 'q', 'x', 'c1', 'ho', 'v', '\x1etext', 1, 3, 2, 1, 250]
    expect(decodeExchangeReply(flat)).to.deep.equal([
      ['s1'],
      reserved,
      250,
      ['q', 'x', 'c1'],
      ['ho', 'v'],
      ['\x1etext'],
    ])
    expect(decodeExchangeReply([0, 0, 0, 0, -1])).to.deep.equal([[], [], -1, [], [], []])
  })
})
