import { expect } from 'chai'
import { getBroker, task, WorkerPool, type Broker, type TaskContext } from '../../lib/index.js'
import { Scheduler } from '../../lib/worker/scheduler.js'
import { backends } from '../helpers/backends.js'
import { uniqueQueue, until } from '../helpers/util.js'

for (const backend of backends) {
  describe(`contract: periodic tasks [${backend.name}]`, () => {
    let url: string
    before(async () => {
      url = await backend.url()
    })

    /** Three pools of one queue, each recording the task ids it ran. */
    async function pools(queue: string, n: number) {
      const runs: string[] = []
      const made: Array<{ broker: Broker; pool: WorkerPool }> = []
      for (let i = 0; i < n; i++) {
        const broker = getBroker(url, queue)
        broker.expose(function report(this: TaskContext, what: string) {
          runs.push(this.taskId)
          return what
        })
        const pool = new WorkerPool(broker, { sweepInterval: 200 })
        await pool.start()
        made.push({ broker, pool })
      }
      return {
        runs,
        /** Resolves once every pool is idle (what was fired has run). */
        async idle() {
          await Promise.all(made.map(m => m.pool.onIdle()))
        },
        async stop() {
          for (const m of made) {
            await m.pool.stop()
            await m.broker.close()
          }
        },
      }
    }

    it('an every: 300 schedule with three pools fires each due time once, in order, none early', async () => {
      const queue = uniqueQueue('sched')
      const admin = getBroker(url, queue)
      const p = await pools(queue, 3)
      try {
        const scheduledAt = Date.now()
        const info = await admin.schedule('tick', { every: 300 }, admin.queue().report, 'daily')
        expect(info).to.include({ id: 'tick', name: 'report', every: 300, runs: 0 })
        // Ten runs: the tenth due time is 3 000 ms after schedule() (the grid starts one interval
        // after it). On a loaded machine they come later, never sooner, and none is skipped.
        await until(() => p.runs.length >= 10, 15_000, 'ten runs')
        expect(Date.now() - scheduledAt).to.be.at.least(2_990)
        await admin.unschedule('tick')
        // A fire committed just before the unschedule may still be on its way to a pool (a few ms
        // on postgres://), or reserved by one that has not started it yet: count once the backend
        // holds no fired task that has not ended, and every pool is idle.
        const live = ['pending', 'enqueued', 'processing'] as const
        await until(
          async () => (await admin.tasks({ name: 'report', status: live })).length === 0,
          5000,
          'the fired tasks to end',
        )
        await p.idle()
        const fired = [...p.runs]
        // The tenth, and at most the one due time whose fire raced the unschedule.
        expect(fired.length, fired.join(' ')).to.be.within(10, 11)
        expect(new Set(fired).size).to.equal(fired.length)
        for (const id of fired) expect(id).to.match(/^tick@\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/)
        const dues = fired.map(id => Date.parse(id.slice(5))).sort((a, b) => a - b)
        for (let i = 1; i < dues.length; i++) expect(dues[i]! - dues[i - 1]!).to.equal(300)
        expect(dues[0]).to.equal(info.next!.getTime()) // the grid's first point, not skipped
        await new Promise(r => setTimeout(r, 400))
        expect(p.runs.length).to.equal(fired.length) // unschedule stopped it
        expect(await admin.schedules()).to.deep.equal([])
      } finally {
        await p.stop()
        await admin.close()
      }
    })

    it('lists schedules with their next due time, and replaces one upserted with the same id', async () => {
      const queue = uniqueQueue('sched')
      const admin = getBroker(url, queue)
      try {
        const q = admin.queue()
        await admin.schedule('nightly', { cron: '0 3 * * *', tz: 'Europe/Berlin' }, q.report, 'a')
        await admin.schedule('often', { every: 60_000 }, task(q.report, { priority: 2 }), 'b')
        await admin.schedule('Weekly', { cron: '0 4 * * 1' }, q.report, 'd')
        let all = await admin.schedules()
        // In order of id by code point, whatever order they were made in and on any backend.
        expect(all.map(s => s.id)).to.deep.equal(['Weekly', 'nightly', 'often'])
        const nightly = all.find(s => s.id === 'nightly')!
        expect(nightly).to.include({
          name: 'report',
          cron: '0 3 * * *',
          tz: 'Europe/Berlin',
          runs: 0,
        })
        expect(nightly.next!.getTime()).to.be.above(Date.now())
        await admin.schedule('nightly', { cron: '30 4 * * *' }, q.report, 'c')
        all = await admin.schedules()
        // Without tz, the caller's zone is stored with it: every pool reads it alike.
        expect(all.find(s => s.id === 'nightly')).to.include({
          cron: '30 4 * * *',
          tz: Intl.DateTimeFormat().resolvedOptions().timeZone,
        })
        expect(await admin.unschedule('nightly')).to.equal(true)
        expect(await admin.unschedule('nightly')).to.equal(false)
        expect((await admin.schedules()).map(s => s.id)).to.deep.equal(['Weekly', 'often'])
        await admin.unschedule('often')
        await admin.unschedule('Weekly')
      } finally {
        await admin.close()
      }
    })

    it('after downtime a pool that starts fires one catch-up run; catchUp: false skips it', async () => {
      const queue = uniqueQueue('sched')
      const admin = getBroker(url, queue)
      try {
        const q = admin.queue()
        await admin.schedule('late', { every: 200, limit: 20 }, q.report, 'x')
        await admin.schedule('skip', { every: 200, limit: 20, catchUp: false }, q.report, 'y')
        await new Promise(r => setTimeout(r, 2700)) // several due times pass with no pool: time is under test
        const p = await pools(queue, 1)
        await until(() => p.runs.some(id => id.startsWith('late@')), 5000, 'the catch-up run')
        const firstRun = Date.now()
        await new Promise(r => setTimeout(r, 100))
        await admin.unschedule('late')
        await admin.unschedule('skip')
        await p.stop()
        const late = p.runs.filter(id => id.startsWith('late@'))
        // One run for all the missed due times (then, perhaps, one regular run after it).
        expect(late.length).to.be.within(1, 2)
        expect(Date.parse(late[0]!.slice(5))).to.be.below(firstRun - 2000)
        // The skipped schedule's missed times did not run; only a regular time after the start may.
        for (const id of p.runs.filter(i => i.startsWith('skip@')))
          expect(Date.parse(id.slice(5))).to.be.above(firstRun - 1000)
      } finally {
        await admin.close()
      }
    })

    it('catchUp: false skips a due time that came before the pool started, however short the downtime', async () => {
      const queue = uniqueQueue('sched')
      const admin = getBroker(url, queue)
      try {
        await admin.schedule('short', { every: 300, catchUp: false }, admin.queue().report, 's')
        await new Promise(r => setTimeout(r, 1000)) // due times pass with no pool: time is under test
        const started = Date.now()
        const p = await pools(queue, 1)
        await until(() => p.runs.length > 0, 5000, 'a regular run after the start')
        await admin.unschedule('short')
        await p.stop()
        // Only due times after the pool started ran (250 ms of grace: another pool may be firing).
        for (const id of p.runs) expect(Date.parse(id.slice(6))).to.be.above(started - 250)
      } finally {
        await admin.close()
      }
    })

    it('a schedule with a limit ends after that many runs', async () => {
      const queue = uniqueQueue('sched')
      const admin = getBroker(url, queue)
      const p = await pools(queue, 1)
      try {
        await admin.schedule('thrice', { every: 100, limit: 3 }, admin.queue().report, 'z')
        await until(() => p.runs.length === 3, 5000, 'three runs')
        await new Promise(r => setTimeout(r, 400))
        expect(p.runs).to.have.length(3)
        const [s] = await admin.schedules()
        expect(s).to.include({ id: 'thrice', runs: 3 })
        expect(s!.next).to.equal(undefined)
        await admin.unschedule('thrice')
      } finally {
        await p.stop()
        await admin.close()
      }
    })

    it('a schedule stored while a pool reads the schedules is not lost to that read', async () => {
      const queue = uniqueQueue('sched')
      const broker = getBroker(url, queue)
      const runs: string[] = []
      broker.expose(function report(this: TaskContext) {
        runs.push(this.taskId)
      })
      // No upkeep tick re-reads the schedules during the test: only the backend's notices do.
      const pool = new WorkerPool(broker, { sweepInterval: 60_000 })
      await pool.start()
      try {
        const q = broker.queue()
        // The first one's notice makes the pool read the schedules; the second is stored while
        // that read is under way, and its notice must not be folded into it.
        await Promise.all([
          broker.schedule('yearly', { cron: '0 3 1 1 *' }, q.report),
          broker.schedule('soon', { every: 100, limit: 2 }, q.report),
        ])
        await until(() => runs.length === 2, 5000, 'the second schedule to run twice')
        expect(runs.every(id => id.startsWith('soon@'))).to.equal(true)
        await broker.unschedule('yearly')
        await broker.unschedule('soon')
      } finally {
        await pool.stop()
        await broker.close()
      }
    })

    it('a schedule replaced with the same next due time fired the old call and limit from a pool that had not re-read it', async () => {
      const queue = uniqueQueue('sched')
      const admin = getBroker(url, queue)
      const { backend: b } = await admin.backend()
      const errors: Error[] = []
      // A pool's scheduler that does not hear the replacement (no notice reaches it): it read the
      // schedules before, so at the due time it holds the old definition.
      const stale = new Scheduler(b, queue, err => errors.push(err))
      try {
        const q = admin.queue()
        const startAt = new Date(Date.now() + 1500) // time for the replacement before the due time
        await admin.schedule('s', { every: 60_000, startAt, limit: 1 }, q.report, 'old')
        await stale.reload()
        // The same timing (so the same next due time), another call, arguments and limit.
        const when = { every: 60_000, startAt, limit: 3 }
        await admin.schedule('s', when, task(q.report, { priority: 7 }), 'new')
        const id = `s@${startAt.toISOString()}`
        await until(async () => (await admin.task(id)) !== undefined, 5000, 'the due time to fire')
        const run = await admin.task(id)
        expect(run).to.include({ priority: 7 })
        expect(run!.args).to.deep.equal(['new'])
        // The next due time is the new definition's (limit 3), not ended by the old limit of 1.
        await until(async () => (await admin.schedules())[0]?.runs === 1, 2000, 'the run counted')
        const [s] = await admin.schedules()
        expect(s!.next?.getTime()).to.equal(startAt.getTime() + 60_000)
        expect(errors).to.deep.equal([])
      } finally {
        stale.stop()
        await admin.unschedule('s')
        await admin.close()
      }
    })

    it('a fire refused because another pool fired the due time first threw a TypeError on Redis: it resolves false', async () => {
      const queue = uniqueQueue('sched')
      const admin = getBroker(url, queue)
      const { backend: b } = await admin.backend()
      try {
        const info = await admin.schedule('s', { every: 60_000 }, admin.queue().report, 'x')
        const due = info.next!.getTime()
        const [stored] = await b.schedules(queue)
        const run = { ...stored!.task, id: 's@a', idChosen: true, runAt: 0 }
        // Another due time than the stored one (as for a pool whose read is older than a firing),
        // another definition's generation, a schedule that went.
        expect(await b.fireSchedule(queue, 's', stored!.gen, due - 1, due, run)).to.equal(false)
        expect(await b.fireSchedule(queue, 's', 'other', due, due + 1, run)).to.equal(false)
        expect(await b.fireSchedule(queue, 's', undefined, due, due + 1, run)).to.equal(false)
        expect(await b.fireSchedule(queue, 'gone', undefined, due, due + 1, run)).to.equal(false)
        expect(await admin.task('s@a')).to.equal(undefined)
        expect(await admin.schedules()).to.deep.equal([info])
      } finally {
        await admin.unschedule('s')
        await admin.close()
      }
    })

    it('a schedule stored by an earlier worq (no gen) still fires', async () => {
      const queue = uniqueQueue('sched')
      const admin = getBroker(url, queue)
      const { backend: b } = await admin.backend()
      try {
        await admin.schedule('s', { every: 60_000 }, admin.queue().report, 'x')
        const { gen, ...legacy } = (await b.schedules(queue))[0]!
        expect(gen).to.be.a('string')
        await b.putSchedule(queue, legacy) // as the previous version stored it
        const [read] = await b.schedules(queue)
        expect(read).to.not.have.property('gen')
        const due = read!.next!
        const run = {
          ...read!.task,
          id: `s@${new Date(due).toISOString()}`,
          idChosen: true,
          runAt: 0,
        }
        expect(await b.fireSchedule(queue, 's', 'a-gen', due, due + 60_000, run)).to.equal(false)
        expect(await b.fireSchedule(queue, 's', undefined, due, due + 60_000, run)).to.equal(true)
        expect((await admin.task(run.id))?.args).to.deep.equal(['x'])
        expect((await admin.schedules())[0]).to.include({ runs: 1 })
      } finally {
        await admin.unschedule('s')
        await admin.close()
      }
    })
  })
}
