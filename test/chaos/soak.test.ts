import { expect } from 'chai'
import { spawn } from 'node:child_process'
import { Redis } from 'ioredis'
import { killAll, worq, type CliProcess } from '../helpers/cli.js'
import { redisUrl } from '../helpers/redis-server.js'
import { uniqueQueue } from '../helpers/util.js'

const ROOT = new URL('../../', import.meta.url).pathname
const TASKS = `${ROOT}test/fixtures/soak-tasks.ts`
const PRODUCER = `${ROOT}test/fixtures/soak-producer.ts`
/** Tasks in all; WORQ_SOAK_TASKS=50000 runs the full soak. */
const TOTAL = Number(process.env.WORQ_SOAK_TASKS ?? 6000)
const PRODUCERS = 2
const WORKERS = 3

interface Counts {
  sent: number
  completed: number
  expired: number
  failed: number
  wrong: number
  unsettled: number
}

function producer(url: string, queue: string, prefix: string, count: number, hash: string) {
  const proc = spawn(
    process.execPath,
    ['--import', 'tsx', PRODUCER, url, queue, prefix, String(count), hash],
    {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  )
  let out = ''
  proc.stdout.on('data', (c: Buffer) => (out += c.toString()))
  return new Promise<Record<'1' | '3', Counts>>((resolve, reject) =>
    proc.once('exit', code =>
      code === 0
        ? resolve(JSON.parse(out.trim().split('\n').at(-1)!))
        : reject(new Error(`producer exited ${code}: ${out}`)),
    ),
  )
}

describe('chaos: soak with workers killed at random', function () {
  this.timeout(600_000)
  afterEach(() => killAll())

  it('loses nothing: retried tasks complete exactly once, the others complete or expire, no keys remain', async () => {
    const url = await redisUrl()
    const side = new Redis(url)
    const queue = uniqueQueue('soak')
    const hash = `test:{${queue}}:runs`
    process.env.WORQ_TEST_SIDE_URL = url
    const startWorker = () =>
      worq([
        'worker',
        url,
        '--tasks',
        TASKS,
        '--queue',
        queue,
        '--concurrency',
        '16',
        '--sweep-interval',
        '100',
      ])
    const workers: CliProcess[] = []
    for (let i = 0; i < WORKERS; i++) workers.push(startWorker())
    await Promise.all(workers.map(w => w.line(/worker:start/)))

    let kills = 0
    let done = false
    const chaos = (async () => {
      while (!done) {
        await new Promise(r => setTimeout(r, 300 + Math.random() * 400)) // the chaos interval itself
        if (done) break
        const i = Math.floor(Math.random() * workers.length)
        const victim = workers[i]!
        victim.proc.kill('SIGKILL')
        await victim.exited
        kills++
        workers[i] = startWorker()
        await workers[i]!.line(/worker:start/)
      }
    })()

    const per = Math.ceil(TOTAL / PRODUCERS)
    const results = await Promise.all(
      Array.from({ length: PRODUCERS }, (_, p) => producer(url, queue, `p${p}`, per, hash)),
    )
    done = true
    await chaos
    const sum = (k: '1' | '3', f: keyof Counts) => results.reduce((s, r) => s + r[k][f], 0)
    const runs = Object.values(await side.hgetall(hash)).map(Number)
    const report = {
      tasks: sum('1', 'sent') + sum('3', 'sent'),
      killedWorkers: kills,
      withAttempts: {
        sent: sum('3', 'sent'),
        completed: sum('3', 'completed'),
        expired: sum('3', 'expired'),
        failed: sum('3', 'failed'),
      },
      withoutAttempts: {
        sent: sum('1', 'sent'),
        completed: sum('1', 'completed'),
        expired: sum('1', 'expired'),
        failed: sum('1', 'failed'),
      },
      wrongResults: sum('1', 'wrong') + sum('3', 'wrong'),
      unsettled: sum('1', 'unsettled') + sum('3', 'unsettled'),
      executions: runs.reduce((s, n) => s + n, 0),
      executedMoreThanOnce: runs.filter(n => n > 1).length,
    }
    console.log(`      soak: ${JSON.stringify(report)}`)
    expect(report.tasks).to.equal(per * PRODUCERS)
    expect(report.withAttempts.completed).to.equal(report.withAttempts.sent)
    expect(report.withoutAttempts.completed + report.withoutAttempts.expired).to.equal(
      report.withoutAttempts.sent,
    )
    expect(report.withoutAttempts.failed + report.withAttempts.failed).to.equal(0)
    expect(report.wrongResults).to.equal(0)
    expect(report.unsettled).to.equal(0)
    // An execution beyond the first happens only for a task whose worker was killed mid-run.
    expect(report.executedMoreThanOnce).to.be.at.most(kills * 16 * 3)

    for (const w of workers) w.proc.kill('SIGTERM')
    await Promise.all(workers.map(w => w.exited))
    await side.del(hash)
    // Outcomes live 3 s; worker registrations lapse after 3 sweep intervals. Then nothing is left.
    await new Promise(r => setTimeout(r, 3500)) // the expiry itself is under test
    const left = await side.keys(`worq:{${queue}}:*`)
    expect(left).to.deep.equal([])
    side.disconnect()
  })
})
