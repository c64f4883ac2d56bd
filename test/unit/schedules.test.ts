import { expect } from 'chai'
import { Cron } from 'croner'
import { checkSchedule, nextDue } from '../../lib/admin/schedules.js'
import { getBroker } from '../../lib/index.js'
import { uniqueQueue } from '../helpers/util.js'

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

describe('schedules: timings that could never run', () => {
  const broker = getBroker('memory://', uniqueQueue('sched'))
  const q = broker.queue()
  after(() => broker.close())

  /** The error of `broker.schedule('s', when, q.report)`; nothing may be stored. */
  async function refused(when: object): Promise<Error> {
    const err = await broker.schedule('s', when as never, q.report).catch((e: unknown) => e)
    expect(err, JSON.stringify(when)).to.be.instanceOf(TypeError)
    expect(await broker.schedules()).to.deep.equal([])
    return err as Error
  }

  it('an endAt in the past was stored as a schedule already ended: a TypeError naming `endAt`', async () => {
    const endAt = new Date(Date.now() - 60_000)
    for (const when of [
      { every: 1000, endAt },
      { cron: '* * * * *', endAt },
      { every: 1000, startAt: new Date(Date.now() - 120_000), endAt },
    ]) {
      const err = await refused(when)
      expect(err.message).to.match(/^Expected `endAt` to be in the future/)
      expect(err.message).to.include(endAt.toISOString())
    }
  })

  it('an endAt before the first due time was stored and never ran: a TypeError naming `endAt` and that time', async () => {
    const startAt = new Date(Date.now() + 3_600_000)
    const every = await refused({ every: 60_000, endAt: new Date(Date.now() + 30_000) })
    expect(every.message).to.match(
      /^Expected `endAt` to be at or after the schedule's first due time/,
    )
    // A cron due at 03:00 UTC, from a startAt at 03:30 two days on: its first due time is 03:00
    // the day after that, and an endAt a minute after startAt comes before it.
    const day = 86_400_000
    const cronStart = new Date(Math.floor(Date.now() / day) * day + 2 * day + 3.5 * 3_600_000)
    const first = new Date(cronStart.getTime() + day - 1_800_000)
    const cron = await refused({
      cron: '0 3 * * *',
      tz: 'UTC',
      startAt: cronStart,
      endAt: new Date(cronStart.getTime() + 60_000),
    })
    expect(cron.message).to.include(`first due time, ${first.toISOString()}`)
    // With startAt, the first due time is startAt: endAt after startAt but before it is fine.
    const ok = await broker.schedule(
      's',
      { every: 60_000, startAt, endAt: new Date(startAt.getTime() + 1) },
      q.report,
    )
    expect(ok.next).to.deep.equal(startAt)
    await broker.unschedule('s')
  })

  it('every: 10.4 was silently rounded to 10: a fraction of a ms is rounded up, as task durations are', async () => {
    for (const [every, stored] of [
      [10.4, 11],
      [10.5, 11],
      [999.01, 1000],
      [60_000, 60_000],
    ] as const) {
      expect(checkSchedule({ every }).when, String(every)).to.deep.equal({ every: stored })
      const info = await broker.schedule('f', { every }, q.report)
      expect(info.every, String(every)).to.equal(stored)
    }
    await broker.unschedule('f')
  })
})
