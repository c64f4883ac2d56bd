import { expect } from 'chai'
import { Cron } from 'croner'
import { checkSchedule, nextDue } from '../../lib/admin/schedules.js'

/** The due times after `from`, `n` of them. */
function dues(when: object, from: string, n: number): string[] {
  const s = { ...checkSchedule(when), runs: 0 }
  const out: string[] = []
  let t = Date.parse(from)
  for (let i = 0; i < n; i++) {
    const next = nextDue(s, t)
    if (next === null) break
    out.push(new Date(next).toISOString())
    t = next
  }
  return out
}

describe('schedules: due times', () => {
  it('a daily cron in a zone keeps its wall time across both daylight-saving changes', () => {
    // Europe/Berlin: CET (UTC+1) until 2026-03-29 02:00, CEST (UTC+2) until 2026-10-25 03:00.
    expect(
      dues({ cron: '0 3 * * *', tz: 'Europe/Berlin' }, '2026-03-27T12:00:00Z', 3),
    ).to.deep.equal([
      '2026-03-28T02:00:00.000Z',
      '2026-03-29T01:00:00.000Z',
      '2026-03-30T01:00:00.000Z',
    ])
    expect(
      dues({ cron: '0 3 * * *', tz: 'Europe/Berlin' }, '2026-10-24T12:00:00Z', 3),
    ).to.deep.equal([
      '2026-10-25T02:00:00.000Z',
      '2026-10-26T02:00:00.000Z',
      '2026-10-27T02:00:00.000Z',
    ])
  })

  it('agrees with the cron library on every time around a change, seconds field included', () => {
    for (const [cron, tz, from] of [
      ['30 2 * * *', 'Europe/Berlin', '2026-03-28T00:00:00Z'],
      ['30 2 * * *', 'Europe/Berlin', '2026-10-24T00:00:00Z'],
      ['*/20 * * * *', 'America/New_York', '2026-03-08T05:00:00Z'],
      ['15 */10 * * * *', 'Australia/Sydney', '2026-04-04T15:00:00Z'],
    ] as const) {
      const lib = new Cron(cron, { timezone: tz, paused: true })
      let t = new Date(from)
      const expected: string[] = []
      for (let i = 0; i < 6; i++) {
        t = lib.nextRun(t)!
        expected.push(t.toISOString())
      }
      expect(dues({ cron, tz }, from, 6), `${cron} ${tz}`).to.deep.equal(expected)
    }
  })

  it('every: counts from startAt; endAt and limit end the schedule', () => {
    const startAt = new Date('2026-01-01T00:00:00Z')
    expect(dues({ every: 1000, startAt }, '2025-12-31T23:59:59Z', 3)).to.deep.equal([
      '2026-01-01T00:00:00.000Z',
      '2026-01-01T00:00:01.000Z',
      '2026-01-01T00:00:02.000Z',
    ])
    const endAt = new Date('2026-01-01T00:00:01.500Z')
    expect(dues({ every: 1000, startAt, endAt }, '2025-12-31T23:59:59Z', 5)).to.have.length(2)
    const s = { ...checkSchedule({ every: 1000, startAt, limit: 2 }), runs: 2 }
    expect(nextDue(s, Date.parse('2026-01-01T00:00:05Z'))).to.equal(null)
  })
})
