/**
 * The checks of `broker.schedule()` on every backend: a bad id, timing or call is a TypeError that
 * names what to change, and nothing is stored.
 */
import { expect } from 'chai'
import { getBroker, task, WorkerPool } from '../../lib/index.js'
import { backends } from '../helpers/backends.js'
import { uniqueQueue } from '../helpers/util.js'

for (const backend of backends) {
  describe(`contract: schedule() checks [${backend.name}]`, () => {
    let url: string
    before(async () => {
      url = await backend.url()
    })

    it('bad schedules are TypeErrors naming what to change', async () => {
      const admin = getBroker(url, uniqueQueue('sched'))
      try {
        const q = admin.queue()
        const bad: Array<[string, unknown, unknown, RegExp]> = [
          ['a@b', { every: 100 }, q.report, /"@"/],
          ['a', { cron: 'not a cron' }, q.report, /`cron`/],
          ['a', { cron: '0 3 * * *', tz: 'Mars/Olympus' }, q.report, /`cron` and `tz`/],
          ['a', { every: 5 }, q.report, /`every`/],
          ['a', { every: 100, cron: '* * * * *' }, q.report, /either/],
          ['a', { every: 100, limit: 0 }, q.report, /`limit`/],
          ['a', { every: 100 }, () => 1, /queue function/],
        ]
        for (const [id, when, call, message] of bad) {
          const err = await admin.schedule(id, when as never, call).catch((e: unknown) => e)
          expect(err, JSON.stringify(when)).to.be.instanceOf(TypeError)
          expect((err as Error).message).to.match(message)
        }
        expect(await admin.schedules()).to.deep.equal([])
      } finally {
        await admin.close()
      }
    })

    it('a cron that never fires (0 0 31 2 *) was stored: a TypeError naming the expression', async () => {
      const admin = getBroker(url, uniqueQueue('sched'))
      try {
        const q = admin.queue()
        for (const when of [
          { cron: '0 0 31 2 *' },
          { cron: '0 0 30 2 *', tz: 'Europe/Berlin' },
          { cron: '0 0 0 31 4 *' }, // six fields, seconds first
        ]) {
          const err = await admin.schedule('never', when, q.report).catch((e: unknown) => e)
          expect(err, when.cron).to.be.instanceOf(TypeError)
          expect((err as Error).message).to.include(`${JSON.stringify(when.cron)} never fires`)
        }
        // February 29 comes every four years: it fires.
        const leap = await admin.schedule('leap', { cron: '0 0 29 2 *' }, q.report)
        expect(leap.next).to.be.instanceOf(Date)
        expect(leap.next!.getMonth()).to.equal(1)
        expect((await admin.schedules()).map(s => s.id)).to.deep.equal(['leap'])
        await admin.unschedule('leap')
      } finally {
        await admin.close()
      }
    })

    it('a tx option on the call of schedule() was dropped silently: a TypeError says to leave it out', async () => {
      const admin = getBroker(url, uniqueQueue('sched'))
      // What the `tx` option takes (a node-postgres client); nothing is sent through this one.
      const tx = { query: async () => ({ rows: [] }) }
      try {
        const q = admin.queue()
        for (const [what, call] of [
          ['task(fn, { tx })', task(q.report, { tx })],
          ['broker.transaction(tx)', admin.transaction(tx).report],
          ['queue defaults', admin.queue('', { tx }).report],
        ] as const) {
          const err = await admin.schedule('s', { every: 1000 }, call).catch((e: unknown) => e)
          expect(err, what).to.be.instanceOf(TypeError)
          expect((err as Error).message, what).to.match(/to have no `tx` option/)
        }
        const inWhen = await admin
          .schedule('s', { every: 1000, tx } as never, q.report)
          .catch((e: unknown) => e)
        expect(inWhen).to.be.instanceOf(TypeError)
        expect((inWhen as Error).message).to.match(/Unknown schedule field `tx`/)
        expect(await admin.schedules()).to.deep.equal([])
      } finally {
        await admin.close()
      }
    })

    it('a Deferred among the arguments of schedule() failed every run once its result expired: a TypeError names where', async () => {
      const queue = uniqueQueue('sched-deferred')
      const admin = getBroker(url, queue)
      admin.expose(function report(what: unknown) {
        return what
      })
      const pool = new WorkerPool(admin)
      try {
        const q = admin.queue()
        await pool.start()
        const done = await q.report('done')
        expect(await done.result(5000)).to.equal('done') // completed: its value would go inline
        await pool.stop()
        const pending = await q.report('pending') // no pool now: it stays enqueued
        const cases: Array<[string, unknown[], string]> = [
          ['a pending Deferred', ['a', pending], 'args[1]'],
          ['a completed Deferred', [done], 'args[0]'],
          ['a promise of one', ['a', 'b', q.report('later')], 'args[2]'],
          ['one in an array in an object', [{ items: [1, pending] }], 'args[0].items[1]'],
          ['one in a Map', [new Map([['k', pending]])], 'args[0].get(k)'],
          ['one in a Set', ['a', new Set([pending])], 'args[1]<member>'],
        ]
        for (const [what, args, where] of cases) {
          const err = await admin
            .schedule('s', { every: 1000 }, q.report, ...args)
            .catch((e: unknown) => e)
          expect(err, what).to.be.instanceOf(TypeError)
          const message = (err as Error).message
          const position = Number(/^args\[(\d+)\]/.exec(where)![1]) + 1
          expect(message, what).to.include(`argument ${position} after \`call\` (${where})`)
          expect(message, what).to.match(/pass a plain value/)
        }
        expect(await admin.schedules()).to.deep.equal([])
        // The value itself is taken, and each run gets it.
        const info = await admin.schedule('s', { every: 1000 }, q.report, done.value)
        expect(info.id).to.equal('s')
        await admin.unschedule('s')
      } finally {
        await pool.stop()
        await admin.purge()
        await admin.close()
      }
    })
  })
}
