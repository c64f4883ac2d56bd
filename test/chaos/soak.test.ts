/**
 * Soak: producer processes send many tasks through 3 `worq worker` processes while a chaos loop
 * SIGKILLs a random worker every few hundred ms and starts a new one. Three independent records
 * are compared afterwards:
 *
 * - what the producers' Deferreds delivered (completed / expired / failed / wrong / unsettled);
 * - every execution, logged by the task itself when it starts (`<id> <pid>` on a side list);
 * - every recorded outcome, counted from the wire (test/helpers/chaos-outcomes.ts).
 *
 * "Exactly once" means: exactly one recorded outcome per task, and it is one that a run of the
 * task produced. A task may *execute* more than once only when a worker died (or lost its lease)
 * while running it, and a task without `attempts` executes at most once.
 *
 * WORQ_SOAK_TASKS (default 10 000) sets the size: WORQ_SOAK_TASKS=50000 npm run test:chaos.
 */
import { expect } from 'chai'
import { spawn } from 'node:child_process'
import { Redis } from 'ioredis'
import { killAll, worq, type CliProcess } from '../helpers/cli.js'
import { queueKeys, taskKeys, watchOutcomes } from '../helpers/chaos-outcomes.js'
import { getBroker, WorkerPool } from '../../lib/index.js'
import { redisUrl } from '../helpers/redis-server.js'
import { clusterUrl } from '../helpers/redis-cluster.js'
import { connect } from '../../lib/backends/redis/connections.js'
import { connectionTopology } from '../../lib/backends/redis/topology.js'
import { uniqueQueue } from '../helpers/util.js'

const ROOT = new URL('../../', import.meta.url).pathname
const TASKS = `${ROOT}test/fixtures/soak-tasks.ts`
const PRODUCER = `${ROOT}test/fixtures/soak-producer.ts`
/** Tasks in all. */
const TOTAL = Number(process.env.WORQ_SOAK_TASKS ?? 10_000)
const PRODUCERS = 3
const WORKERS = 3
const CONCURRENCY = 16
const SWEEP_MS = 100
/** resultTimeout of the soak's tasks: how long after the end the test waits for an empty queue. */
const KEEP_MS = 3000
/** A worker is killed every KILL_MS[0]..KILL_MS[1] ms. */
const KILL_MS = [200, 600] as const

interface Counts {
  sent: number
  completed: number
  expired: number
  failed: number
  wrong: number
  unsettled: number
}

function producer(url: string, queue: string, prefix: string, count: number, log: string) {
  const args = [PRODUCER, url, queue, prefix, String(count), log, String(KEEP_MS)]
  const proc = spawn(process.execPath, ['--import', 'tsx', ...args], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'inherit'],
  })
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

/** Reads a long list in chunks. */
async function readList(redis: Redis, key: string): Promise<string[]> {
  const all: string[] = []
  for (let i = 0; ; i += 10_000) {
    const part = await redis.lrange(key, i, i + 9_999)
    all.push(...part)
    if (part.length < 10_000) return all
  }
}

/**
 * The queue's keys as the servers hold them: on one Redis, its SCAN; on a cluster, the SCAN of
 * every master (the queue's slot lives on one of them).
 */
async function keysOf(url: string, queue: string, observed = false): Promise<string[]> {
  const list = observed ? queueKeys : taskKeys
  const conn = connect(connectionTopology(url), 'cmd')
  try {
    if (!('nodes' in conn)) return await list(conn, queue)
    await new Promise(r => (conn.status === 'ready' ? r(undefined) : conn.once('ready', r)))
    const all = await Promise.all(conn.nodes('master').map(n => list(n, queue)))
    return all.flat()
  } finally {
    conn.disconnect()
  }
}

const cases = [
  { name: 'one Redis', url: redisUrl, total: TOTAL },
  // The cluster's run is half as long: the suite runs both in CI.
  { name: 'Redis Cluster', url: clusterUrl, total: Math.ceil(TOTAL / 2) },
]

for (const c of cases)
  describe(`chaos: soak with workers killed at random [${c.name}]`, function () {
    this.timeout(900_000)
    afterEach(() => killAll())

    it('loses nothing: one recorded result per task, retried tasks complete, the others complete or expire, no keys remain', async () => {
      const url = await c.url()
      const TOTAL = c.total
      // The run log lives on the plain test Redis (a side channel the faults do not touch).
      const sideUrl = await redisUrl()
      const side = new Redis(sideUrl)
      const queue = uniqueQueue('soak')
      const log = `test:{${queue}}:runs`
      process.env.WORQ_TEST_SIDE_URL = sideUrl
      const watch = await watchOutcomes(url, queue)

      interface Worker {
        cli: CliProcess
        ready: boolean
      }
      const every: CliProcess[] = []
      let started = 0
      const startWorker = (): Worker => {
        const cli = worq([
          'worker',
          url,
          '--tasks',
          TASKS,
          '--queue',
          queue,
          '--concurrency',
          String(CONCURRENCY),
          // Every other worker runs two lanes, so that killed pools with several lanes are in it.
          '--lanes',
          String(started++ % 2 === 0 ? 2 : 1),
          '--sweep-interval',
          String(SWEEP_MS),
        ])
        every.push(cli)
        const w = { cli, ready: false }
        cli.line(/worker:start/, 60_000).then(
          () => (w.ready = true),
          () => undefined, // killed before it started, or failed: the checks below will tell
        )
        return w
      }
      const workers = Array.from({ length: WORKERS }, startWorker)
      await Promise.all(workers.map(w => w.cli.line(/worker:start/, 60_000)))

      const killed = new Set<number>()
      let done = false
      const chaos = (async () => {
        while (!done) {
          // The chaos interval itself: time is what is under test here.
          await new Promise(r =>
            setTimeout(r, KILL_MS[0] + Math.random() * (KILL_MS[1] - KILL_MS[0])),
          )
          // Keep at least one started worker, so the run moves on while replacements start.
          const ready = workers.filter(w => w.ready)
          if (done || ready.length < 2) continue
          const victim = ready[Math.floor(Math.random() * ready.length)]!
          victim.cli.proc.kill('SIGKILL')
          killed.add(victim.cli.proc.pid!)
          workers[workers.indexOf(victim)] = startWorker()
          await victim.cli.exited
        }
      })()

      const t0 = Date.now()
      const share = (p: number) => Math.floor(TOTAL / PRODUCERS) + (p < TOTAL % PRODUCERS ? 1 : 0)
      const results = await Promise.all(
        Array.from({ length: PRODUCERS }, (_, p) => producer(url, queue, `p${p}`, share(p), log)),
      )
      const elapsed = Date.now() - t0
      done = true
      await chaos
      const sent = TOTAL
      await watch.seen(sent, 10_000)

      for (const w of workers) w.cli.proc.kill('SIGTERM')
      await Promise.all(workers.map(w => w.cli.exited))

      // Executions, from the side log; lost leases, from the workers' logs.
      const runs = new Map<string, number[]>()
      for (const line of await readList(side, log)) {
        const [id, pid] = line.split(' ')
        runs.set(id!, [...(runs.get(id!) ?? []), Number(pid)])
      }
      const leaseLost = new Set<string>()
      for (const cli of every)
        for (const l of cli.lines) {
          const m = /lease:lost \[[^:]+:([^\]]+)\]/.exec(l)
          if (m) leaseLost.add(m[1]!)
        }
      const errors = every.flatMap(cli => cli.lines.filter(l => /pool:error/.test(l)))

      const sum = (k: '1' | '3', f: keyof Counts) => results.reduce((s, r) => s + r[k][f], 0)
      const retried = (n: number) => n % 2 === 0
      const ids = Array.from({ length: PRODUCERS }, (_, p) =>
        Array.from({ length: share(p) }, (_, n) => ({
          id: `p${p}-${n}`,
          attempts: retried(n) ? 3 : 1,
        })),
      ).flat()

      const problems: string[] = []
      let ranTwice = 0
      let ranTwiceAfterKill = 0
      let ranTwiceAfterLeaseLost = 0
      let expiredWithAttempts = 0
      for (const { id, attempts } of ids) {
        const pids = runs.get(id) ?? []
        const outcome = watch.last.get(id)
        if (watch.counts.get(id) !== 1)
          problems.push(`${id}: ${watch.counts.get(id) ?? 0} recorded outcomes`)
        if (pids.length > attempts)
          problems.push(`${id}: ran ${pids.length} times, attempts ${attempts}`)
        if (outcome?.startsWith('c')) {
          const pid = Number(/@(\d+)/.exec(outcome)?.[1])
          if (!pids.includes(pid)) problems.push(`${id}: result from pid ${pid}, runs ${pids}`)
        } else if (outcome?.startsWith('x')) {
          const made = (JSON.parse(outcome.slice(1)) as { attempts?: number }).attempts
          if (made !== attempts)
            problems.push(`${id}: expired after ${made} of ${attempts} attempts`)
          if (attempts > 1) expiredWithAttempts++
        } else problems.push(`${id}: outcome ${outcome?.slice(0, 80)}`)
        if (pids.length > 1) {
          ranTwice++
          // Every run but the last was cut short: its worker was killed, or lost its lease.
          const cut = pids.slice(0, -1)
          if (cut.every(p => killed.has(p))) ranTwiceAfterKill++
          else if (leaseLost.has(id)) ranTwiceAfterLeaseLost++
          else problems.push(`${id}: ran on ${pids} though no worker died or lost its lease`)
        }
      }

      const report = {
        tasks: sent,
        seconds: elapsed / 1000,
        tasksPerSecond: Math.round(sent / (elapsed / 1000)),
        workersKilled: killed.size,
        withAttempts3: {
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
        lost: sent - watch.counts.size,
        wrongResults: sum('1', 'wrong') + sum('3', 'wrong'),
        unsettledDeferreds: sum('1', 'unsettled') + sum('3', 'unsettled'),
        recordedOutcomes: watch.total(),
        tasksWithTwoOutcomes: watch.duplicates().length,
        executions: [...runs.values()].reduce((s, p) => s + p.length, 0),
        ranMoreThanOnce: ranTwice,
        ofThoseAfterAKill: ranTwiceAfterKill,
        ofThoseAfterALostLease: ranTwiceAfterLeaseLost,
        poolErrors: errors.length,
      }
      console.log(`      soak: ${JSON.stringify(report)}`)
      expect(problems.slice(0, 20), `${problems.length} problems`).to.deep.equal([])
      expect(report.lost).to.equal(0)
      expect(report.tasksWithTwoOutcomes).to.equal(0)
      expect(report.recordedOutcomes).to.equal(sent)
      expect(report.wrongResults).to.equal(0)
      expect(report.unsettledDeferreds).to.equal(0)
      expect(report.withAttempts3.failed + report.withoutAttempts.failed).to.equal(0)
      // With attempts left, a task completes; it expires only once all 3 went to killed workers.
      expect(report.withAttempts3.completed + expiredWithAttempts).to.equal(
        report.withAttempts3.sent,
      )
      expect(report.withoutAttempts.completed + report.withoutAttempts.expired).to.equal(
        report.withoutAttempts.sent,
      )
      expect(report.workersKilled).to.be.greaterThan(0)

      // Outcomes live KEEP_MS, worker registrations lapse after 3 sweeps, and a sweep drops the
      // listing entries of expired outcomes: a pool that only sweeps (it exposes nothing) stands in
      // for the queue's workers until then. Then nothing of the tasks is left. Time is what is
      // under test, so this polls with SCAN, bounded.
      await side.del(log)
      const janitor = new WorkerPool(getBroker(url, queue), { sweepInterval: SWEEP_MS })
      await janitor.start()
      const end = Date.now() + KEEP_MS + 3 * SWEEP_MS + 5000
      const own = /:(workers|swept|sweep|parked|l:.*|h:.*)$/
      let left = await keysOf(url, queue)
      while (left.some(k => !own.test(k)) && Date.now() < end) {
        await new Promise(r => setTimeout(r, 100))
        left = await keysOf(url, queue)
      }
      await janitor.stop()
      // The sweep guard and the lapsed registrations expire (PX) within three sweep intervals.
      const after = Date.now() + 3 * SWEEP_MS + 2000
      left = await keysOf(url, queue)
      while (left.length > 0 && Date.now() < after) {
        await new Promise(r => setTimeout(r, 50))
        left = await keysOf(url, queue)
      }
      const data = connect(connectionTopology(url), 'cmd')
      for (const k of await keysOf(url, queue, true))
        if (!left.includes(k)) expect(await data.pttl(k), k).to.be.greaterThan(0)
      data.disconnect()
      console.log(
        `      soak: ${left.length} keys of the queue left ${Date.now() - t0 - elapsed} ms after the last result`,
      )
      expect(left).to.deep.equal([])
      watch.close()
      side.disconnect()
    })
  })
