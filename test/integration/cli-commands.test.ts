/**
 * `worq call`, `worq info`, `worq purge` and usage errors, as real processes against the test
 * Redis, with a `worq worker` serving the queue.
 */
import { expect } from 'chai'
import { getBroker, task } from '../../lib/index.js'
import { killAll, TASKS, worq, worqRun, type CliProcess } from '../helpers/cli.js'
import { redisUrl } from '../helpers/redis-server.js'
import { uniqueQueue } from '../helpers/util.js'

describe('cli: worq call, info, purge', function () {
  let url: string
  let queue: string
  let worker: CliProcess

  before(async () => {
    url = await redisUrl()
    queue = uniqueQueue('cli')
    worker = worq(['worker', url, '--tasks', TASKS, '--queue', queue, '--sweep-interval', '200'])
    await worker.line(/worker:start/)
  })

  after(async () => {
    worker.proc.kill('SIGTERM')
    expect((await worker.exited).code).to.equal(0)
    killAll()
  })

  it('worq call round-trips a value as JSON', async () => {
    const r = await worqRun(['call', url, 'w.add', '2', '40', '--queue', queue])
    expect(r).to.deep.equal({ code: 0, out: '42' })
    const s = await worqRun(['call', url, 'd.hello', '"shell"', '-q', queue])
    expect(s).to.deep.equal({ code: 0, out: '"hello shell"' })
  })

  it('worq call exits 1 with the remote error when the task fails, 2 on a bad argument, 3 on no result in time', async () => {
    const failed = await worqRun(['call', url, 'w.fails', '"broken"', '-q', queue])
    expect(failed.code).to.equal(1)
    expect(failed.out).to.match(/ERR_WORQ_TASK_FAILED: w\.fails .* TypeError: broken/)
    const bad = await worqRun(['call', url, 'w.add', '1', 'x', '-q', queue])
    expect(bad.code).to.equal(2)
    expect(bad.out).to.match(/argument 2 is not JSON/)
    const slow = await worqRun(['call', url, 'w.sleep', '2000', '-q', queue, '--wait', '50'])
    expect(slow.code).to.equal(3)
    expect(slow.out).to.match(/no result within 50 ms; .*\(task id \S+\)/)
  })

  it('worq info shows counts and this worker; --json for scripts', async () => {
    const r = await worqRun(['info', url, '--queue', queue, '--json'])
    expect(r.code).to.equal(0)
    const info = JSON.parse(r.out)
    expect(info).to.include({ queue, waiting: 0, delayed: 0, pending: 0 })
    expect(info.workers.map((w: { pid: number }) => w.pid)).to.deep.equal([worker.proc.pid])
    const text = await worqRun(['info', url, '--queue', queue])
    expect(text.out)
      .to.match(/waiting {5}0/)
      .and.to.match(/workers: 1/)
  })

  it('worq purge refuses without --yes off a terminal, and purges with it', async () => {
    const other = uniqueQueue('purge')
    const broker = getBroker(url, other)
    try {
      const d = await task(broker.queue().w.add, { delay: 60_000 })(1, 2)
      const refused = await worqRun(['purge', url, '--queue', other])
      expect(refused.code).to.equal(2)
      expect(refused.out).to.match(/refusing to purge without --yes/)
      expect(await broker.size()).to.equal(1)
      const done = await worqRun(['purge', url, '--queue', other, '--yes'])
      expect(done).to.deep.equal({ code: 0, out: `purged 1 task(s) from queue ${other}` })
      expect(await d.status()).to.equal('cancelled')
    } finally {
      await broker.close()
    }
  })

  it('--help on every command; usage errors exit 2; a bad URL exits 1', async function () {
    this.timeout(60_000) // sixteen CLI processes, each a cold start
    const commands = [
      [],
      ['worker'],
      ['info'],
      ['call'],
      ['purge'],
      ['tasks'],
      ['task'],
      ['cancel'],
    ]
    const all = [...commands, ['pause'], ['resume'], ['schedules']]
    const helps = await Promise.all(all.map(cmd => worqRun([...cmd, '--help'])))
    helps.forEach((r, i) => {
      expect(r.code, all[i]!.join(' ')).to.equal(0)
      expect(r.out).to.match(/^Usage: worq/)
    })
    expect((await worqRun(['nope'])).code).to.equal(2)
    expect((await worqRun(['worker', url])).code).to.equal(2) // --tasks missing
    expect((await worqRun(['worker', url, '--tasks', TASKS, '--concurrency', '0'])).code).to.equal(
      2,
    )
    expect((await worqRun(['worker', url, '--tasks', TASKS, '--lanes', '0'])).code).to.equal(2)
    const lanes = await worqRun(['worker', url, '--tasks', TASKS, '-c', '4', '--lanes', '8'])
    expect(lanes.code).to.equal(2)
    expect(lanes.out).to.match(/^worq: Expected --lanes .*at most --concurrency \(4\), got 8$/)
    const bad = await worqRun(['info', 'nope://x'])
    expect(bad.code).to.equal(1)
    expect(bad.out).to.match(/ERR_WORQ_BAD_URL/)
    const mod = await worqRun(['worker', url, '--tasks', 'test/fixtures/missing.ts'])
    expect(mod.code).to.equal(1)
    expect(mod.out).to.match(/ERR_WORQ_TASKS_MODULE: cannot load the tasks module/)
  })
})
