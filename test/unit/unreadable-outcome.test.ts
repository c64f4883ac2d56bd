/**
 * Outcomes and metadata that cannot be read (written into a backend by something other than worq,
 * or damaged) are reported where worq reads them back, as a `BadMessage`, never thrown as a
 * SyntaxError that stops a listing, a dashboard or a waiter. test/chaos/postgres-hostile.test.ts
 * does the same against a real server.
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
import type { StoredInfo } from '../../lib/backends/records.js'
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
