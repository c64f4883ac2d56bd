/**
 * Stored data that cannot be read (written into a backend by something other than worq, or
 * damaged): outcomes and metadata are reported where worq reads them back, as a `BadMessage`,
 * never thrown as a SyntaxError that stops a listing, a dashboard or a waiter; limits and schedules
 * that do not read as such are left out. test/chaos/redis-stored.test.ts and
 * postgres-stored.test.ts do the same against real servers.
 */
import { expect } from 'chai'
import { TaskFailure } from '../../lib/index.js'
import {
  completedOutcome,
  failedOutcome,
  outcomeStatus,
  readStoredOutcome,
  storedOutcomeError,
} from '../../lib/outcome.js'
import { toTaskInfo } from '../../lib/task-info.js'
import { readableLimit, readableSchedule } from '../../lib/backends/queue-records.js'
import type { StoredInfo } from '../../lib/backends/records.js'
import { limitsOf } from '../../lib/backends/redis/settings.js'
import { remoteError } from '../../lib/remote-error.js'

const UNREADABLE = [
  '',
  'z',
  'zzz',
  'c',
  'cnot json',
  'f',
  'f{"json":',
  'fnull',
  'x{',
  'k[',
  'c{"json":1,"meta":{"values":{"":["class","Evil"]}}}',
]

function stored(outcome: string | undefined, metadata = ''): StoredInfo {
  return {
    id: 'T',
    name: 'echo',
    status: outcome === undefined ? 'enqueued' : outcomeStatus(outcome),
    priority: 0,
    metadata,
    attempt: 1,
    attempts: 1,
    createdAt: 0,
    ...(outcome !== undefined && { outcome }),
  } as StoredInfo
}

describe('unreadable outcomes and metadata', () => {
  it('an outcome that starts with no known status counts as failed', () => {
    for (const o of ['', 'z', 'zzz', '{"json":1}']) expect(outcomeStatus(o), o).to.equal('failed')
    expect(outcomeStatus('cnot json')).to.equal('completed')
  })

  it('reads give a TaskFailure whose remote error is BadMessage, naming the task', () => {
    for (const o of UNREADABLE) {
      const read = readStoredOutcome(o, 'echo', 'q', 'T')
      expect(read.ok, o).to.equal(false)
      if (read.ok) continue
      expect(read.error, o).to.be.instanceOf(TaskFailure)
      expect(read.error.taskId).to.equal('T')
      expect(read.error.remote, o).to.include({ name: 'BadMessage', code: 'ERR_WORQ_BAD_MESSAGE' })
      expect(read.error.remote.message, o).to.match(/^the task's outcome cannot be read: .+/)
      expect(storedOutcomeError(o), o).to.include({ name: 'BadMessage' })
    }
  })

  it('readable outcomes read as before', () => {
    expect(readStoredOutcome(completedOutcome({ a: [1n] }), 'echo', 'q', 'T')).to.deep.equal({
      ok: true,
      value: { a: [1n] },
    })
    const failed = failedOutcome({
      taskName: 'echo',
      queue: 'q',
      taskId: 'T',
      remote: remoteError(new RangeError('boom')),
    })
    expect(storedOutcomeError(failed)).to.include({ name: 'RangeError', message: 'boom' })
  })

  it('task info keeps what it can read: metadata {} and a BadMessage error', () => {
    for (const meta of ['{not json', '[1,2]', '"text"', 'null', '7'])
      expect(toTaskInfo(stored(undefined, meta), 'q').metadata, meta).to.deep.equal({})
    expect(toTaskInfo(stored(undefined, '{"a":1}'), 'q').metadata).to.deep.equal({ a: 1 })
    for (const o of UNREADABLE) {
      const info = toTaskInfo(stored(o), 'q')
      expect(info.value, o).to.equal(undefined)
      expect(info.error, o).to.include({ name: 'BadMessage', code: 'ERR_WORQ_BAD_MESSAGE' })
    }
  })
})

describe('unreadable limits and schedules', () => {
  it('limits read only as whole numbers; the Redis form only as [max, per]', () => {
    expect(readableLimit({ concurrency: 2 })).to.equal(true)
    expect(readableLimit({ rate: { max: 5, per: 1000 } })).to.equal(true)
    for (const l of [
      null,
      'x',
      {},
      { concurrency: 'lots' },
      { concurrency: 1.5 },
      { concurrency: -1 },
      { rate: { max: 5, per: 0 } },
      { rate: { max: 'x', per: 1000 } },
      { rate: [5, 1000] },
    ])
      expect(readableLimit(l), JSON.stringify(l)).to.equal(false)
    const stored = JSON.stringify({
      a: { c: 2 },
      b: { r: [5, 1000] },
      c: { c: 'lots' },
      d: { r: { max: 5, per: 1000 } },
      e: 7,
      f: null,
    })
    expect(limitsOf(stored)).to.deep.equal({
      a: { concurrency: 2 },
      b: { rate: { max: 5, per: 1000 } },
    })
    for (const bad of ['{not json', '[1]', '"x"', 'null'])
      expect(limitsOf(bad), bad).to.deep.equal({})
  })

  it('schedules read only with a timing, a call and their counts', () => {
    const good = {
      id: 's',
      name: 'echo',
      when: { every: 1000 },
      task: {},
      next: 1,
      runs: 0,
      catchUp: true,
    }
    expect(readableSchedule(good)).to.equal(true)
    expect(readableSchedule({ ...good, when: { cron: '* * * * *', tz: 'UTC' } })).to.equal(true)
    for (const s of [
      null,
      { x: 1 },
      { ...good, when: undefined },
      { ...good, when: { every: 0 } },
      { ...good, when: { cron: 5 } },
      { ...good, name: 3 },
      { ...good, task: null },
      { ...good, next: 'soon' },
      { ...good, runs: Number.NaN },
    ])
      expect(readableSchedule(s), JSON.stringify(s)).to.equal(false)
  })
})
