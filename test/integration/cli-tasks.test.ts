/**
 * `worq tasks`, `worq task`, `worq cancel`, `worq pause`, `worq resume`, `worq schedules` and the
 * task types in `worq info`, as real processes against the test Redis.
 */
import { expect } from 'chai'
import { getBroker, task, TaskSpace, WorkerPool, type Broker } from '../../lib/index.js'
import { worqRun } from '../helpers/cli.js'
import { redisUrl } from '../helpers/redis-server.js'
import { latch, uniqueQueue } from '../helpers/util.js'

describe('cli: worq tasks, task, cancel, pause, resume, schedules', function () {
  let url: string
  let queue: string
  let broker: Broker
  before(async () => {
    url = await redisUrl()
    queue = uniqueQueue('clitasks')
    broker = getBroker(url, queue)
  })
  after(async () => {
    await broker.purge()
    await broker.close()
  })

  it('worq tasks lists newest first, filters by status and name, and prints JSON lines', async () => {
    const q = broker.queue()
    const a = await q.reports.build(1)
    const b = await task(q.mail.send, { priority: 3 })('x')
    const table = await worqRun(['tasks', url, '-q', queue])
    expect(table.code).to.equal(0)
    const lines = table.out.split('\n')
    expect(lines[0]).to.match(/^ID\s+NAME\s+STATUS\s+PRIO\s+ATTEMPT\s+AGE\s+WORKER$/)
    expect(lines[1]).to.match(new RegExp(`^${b.id}\\s+mail\\.send\\s+enqueued\\s+3\\s+0/1`))
    expect(lines[2]).to.match(new RegExp(`^${a.id}\\s+reports\\.build\\s+enqueued\\s+0`))
    const json = await worqRun(['tasks', url, '-q', queue, '--json', '--name', 'reports.'])
    const rows = json.out.split('\n').map(l => JSON.parse(l))
    expect(rows.map(r => r.id)).to.deep.equal([a.id])
    expect(rows[0]).to.include({ name: 'reports.build', status: 'enqueued', queue })
    const none = await worqRun(['tasks', url, '-q', queue, '--status', 'failed'])
    expect(none.out.split('\n')).to.have.length(1)
    const bad = await worqRun(['tasks', url, '-q', queue, '--status', 'done'])
    expect(bad.code).to.equal(2)
    expect(bad.out).to.match(/^worq: Expected --status to be one of/)
  })

  it('worq task shows one task; an unknown id exits 4; worq cancel cancels, then exits 1', async () => {
    const d = await broker.queue().mail.send('y')
    const shown = await worqRun(['task', url, d.id, '-q', queue])
    expect(shown.code).to.equal(0)
    expect(shown.out).to.match(new RegExp(`^task ${d.id}  mail\\.send  \\[${queue}\\]`))
    expect(shown.out).to.match(/status {5}enqueued/)
    const json = await worqRun(['task', url, d.id, '-q', queue, '--json'])
    expect(JSON.parse(json.out)).to.include({ id: d.id, status: 'enqueued' })
    const unknown = await worqRun(['task', url, 'no-such-task', '-q', queue])
    expect(unknown.code).to.equal(4)
    expect(unknown.out).to.match(/no task no-such-task/)
    const cancelled = await worqRun(['cancel', url, d.id, '-q', queue])
    expect(cancelled).to.deep.equal({ code: 0, out: `cancelled ${d.id}` })
    expect(await d.status()).to.equal('cancelled')
    const again = await worqRun(['cancel', url, d.id, '-q', queue])
    expect(again.code).to.equal(1)
    expect(again.out).to.match(/already ended \(cancelled\)/)
    expect((await worqRun(['cancel', url, 'no-such-task', '-q', queue])).code).to.equal(4)
  })

  it('worq pause and resume hold and release the queue; worq info shows it and the task types', async () => {
    const other = uniqueQueue('clipause')
    const b = getBroker(url, other)
    const ran = latch()
    b.expose(function ping() {
      ran.resolve()
      return 'pong'
    })
    const pool = new WorkerPool(b)
    try {
      await pool.start()
      const paused = await worqRun(['pause', url, '-q', other])
      expect(paused).to.deep.equal({ code: 0, out: `queue ${other} paused: nothing new starts` })
      expect(await b.isPaused()).to.equal(true)
      const info = await worqRun(['info', url, '-q', other])
      expect(info.out).to.match(/\(paused: nothing new starts\)/)
      expect(info.out).to.match(/task types: 1\n {2}ping {2}\(1 worker\)/)
      const json = JSON.parse((await worqRun(['info', url, '-q', other, '--json'])).out)
      expect(json).to.deep.include({ paused: true, types: [{ name: 'ping', workers: 1 }] })
      const d = await b.queue().ping()
      const resumed = await worqRun(['resume', url, '-q', other])
      expect(resumed).to.deep.equal({ code: 0, out: `queue ${other} resumed` })
      await ran.promise
      expect(await d.result(5000)).to.equal('pong')
    } finally {
      await pool.stop()
      await b.close()
    }
  })

  it('worq call, task and tasks print a cyclic value with "[Circular]" (it failed: "Converting circular structure to JSON")', async () => {
    const other = uniqueQueue('clicycle')
    const b = getBroker(url, other)
    b.expose(
      new TaskSpace('cyc', {
        loop() {
          const o: Record<string, unknown> = { name: 'loop' }
          o.self = o
          o.list = [1, o, new Map([['back', o]])]
          return o
        },
      }),
    )
    const pool = new WorkerPool(b)
    const printed =
      '{"name":"loop","self":"[Circular]","list":[1,"[Circular]",{"back":"[Circular]"}]}'
    try {
      await pool.start()
      const called = await worqRun(['call', url, 'cyc.loop', '-q', other])
      expect(called).to.deep.equal({ code: 0, out: printed })
      const d = await b.queue().cyc.loop()
      const value = (await d.result(5000)) as { self: unknown }
      expect(value.self).to.equal(value) // the cycle arrives whole
      const text = await worqRun(['task', url, d.id, '-q', other])
      expect(text.code).to.equal(0)
      expect(text.out).to.include(`\n  value      ${printed}`)
      const json = await worqRun(['task', url, d.id, '-q', other, '--json'])
      expect(json.code).to.equal(0)
      expect(JSON.stringify(JSON.parse(json.out).value)).to.equal(printed)
      const all = await worqRun(['tasks', url, '-q', other, '--json'])
      expect(all.code).to.equal(0)
      const values = all.out.split('\n').map(l => JSON.stringify(JSON.parse(l).value))
      expect(values).to.deep.equal([printed, printed])
    } finally {
      await pool.stop()
      await b.purge()
      await b.close()
    }
  })

  it('worq schedules lists the periodic tasks', async () => {
    await broker.schedule(
      'nightly',
      { cron: '0 3 * * *', tz: 'UTC' },
      broker.queue().reports.build,
      1,
    )
    const r = await worqRun(['schedules', url, '-q', queue])
    expect(r.code).to.equal(0)
    expect(r.out).to.match(
      /^schedules of queue .*: 1\n {2}nightly {2}reports\.build {2}cron "0 3 \* \* \*" UTC {2}next \d{4}-\d\d-\d\dT03:00:00\.000Z {2}last - {2}runs 0$/,
    )
    const json = await worqRun(['schedules', url, '-q', queue, '--json'])
    expect(JSON.parse(json.out)).to.include({
      id: 'nightly',
      name: 'reports.build',
      cron: '0 3 * * *',
    })
    await broker.unschedule('nightly')
  })
})
