/**
 * Soak on postgres://: the same producers, workers and SIGKILLs as soak.test.ts, plus a crash and
 * restart of the server itself (`pg_ctl restart -m immediate`) once a third of the kills are done,
 * on a private PostgreSQL server the test starts (test/helpers/postgres-server.ts), with the
 * outcomes counted by a trigger the test installs on the task table (every change of a row to
 * `done` is recorded), and the rows of the queue counted at the end.
 *
 * WORQ_SOAK_TASKS (default 10 000) sets the size.
 */
import { expect } from 'chai'
import { spawn } from 'node:child_process'
import { Redis } from 'ioredis'
import pg from 'pg'
import { killAll, worq, type CliProcess } from '../helpers/cli.js'
import { getBroker, WorkerPool } from '../../lib/index.js'
import { startPostgresServer, type PostgresServer } from '../helpers/postgres-server.js'
import { redisUrl } from '../helpers/redis-server.js'
import { uniqueQueue } from '../helpers/util.js'

const ROOT = new URL('../../', import.meta.url).pathname
const TASKS = `${ROOT}test/fixtures/soak-tasks.ts`
const PRODUCER = `${ROOT}test/fixtures/soak-producer.ts`
const TOTAL = Number(process.env.WORQ_SOAK_TASKS ?? 10_000)
const PRODUCERS = 3
const WORKERS = 3
const CONCURRENCY = 16
const SWEEP_MS = 100
/**
 * How long outcomes are kept: longer than the server's crash and recovery under load (0.5–4 s), so
 * that a result is not gone before the producer, which awaits its Deferreds only once it has sent
 * everything, reads it.
 */
const KEEP_MS = 8000
const KILL_MS = [200, 600] as const
/** The server crashes and restarts after this many worker kills. */
const RESTART_AFTER_KILLS = 10

type Counts = Record<'sent' | 'completed' | 'expired' | 'failed' | 'wrong' | 'unsettled', number>

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

/** Records every task row of `queue` that turns `done` (the test's own witness of outcomes). */
async function recordOutcomes(db: pg.Client, queue: string): Promise<void> {
  await db.query(
    `CREATE TABLE IF NOT EXISTS public.soak_outcomes (queue text, id text, outcome text, at bigint)`,
  )
  await db.query(`CREATE OR REPLACE FUNCTION public.soak_record() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      INSERT INTO public.soak_outcomes VALUES (NEW.queue, NEW.id, NEW.outcome, worq.now_ms());
      RETURN NEW;
    END $$`)
  await db.query(`DROP TRIGGER IF EXISTS soak_record ON worq.tasks`)
  await db.query(`CREATE TRIGGER soak_record AFTER UPDATE OF state ON worq.tasks FOR EACH ROW
    WHEN (NEW.state = 'done' AND OLD.state <> 'done' AND NEW.queue = '${queue}')
    EXECUTE FUNCTION public.soak_record()`)
}

describe('chaos: soak with workers killed at random [postgres]', function () {
  this.timeout(900_000)
  let server: PostgresServer | undefined
  afterEach(() => killAll())
  after(async () => {
    await server?.stop()
  })

  it('loses nothing: one recorded result per task, retried tasks complete, the others complete or expire, no rows remain', async () => {
    server = await startPostgresServer()
    const url = server.url
    const side = new Redis(await redisUrl())
    process.env.WORQ_TEST_SIDE_URL = await redisUrl()
    const queue = uniqueQueue('soak')
    const log = `test:{${queue}}:runs`
    const boot = getBroker(url, queue)
    await boot.size() // migrates the schema
    await boot.close()
    let db = new pg.Client({ connectionString: url })
    db.on('error', () => undefined)
    await db.connect()
    await recordOutcomes(db, queue)

    const every: CliProcess[] = []
    let started = 0
    const startWorker = () => {
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
        () => undefined,
      )
      return w
    }
    const workers = Array.from({ length: WORKERS }, startWorker)
    await Promise.all(workers.map(w => w.cli.line(/worker:start/, 60_000)))

    const killed = new Set<number>()
    let done = false
    const restart = { down: 0, up: 0, firstOutcomeAfter: NaN }
    const chaos = (async () => {
      while (!done) {
        if (killed.size === RESTART_AFTER_KILLS && restart.down === 0) {
          // The server crashes under the producers and the workers, and comes back.
          restart.down = Date.now()
          await server!.restart('immediate')
          restart.up = Date.now()
        }
        await new Promise(r =>
          setTimeout(r, KILL_MS[0] + Math.random() * (KILL_MS[1] - KILL_MS[0])),
        )
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
    for (const w of workers) w.cli.proc.kill('SIGTERM')
    await Promise.all(workers.map(w => w.cli.exited))

    const runs = new Map<string, number[]>()
    for (const line of await side.lrange(log, 0, -1)) {
      const [id, pid] = line.split(' ')
      runs.set(id!, [...(runs.get(id!) ?? []), Number(pid)])
    }
    const leaseLost = new Set<string>()
    for (const cli of every)
      for (const l of cli.lines) {
        const m = /lease:lost \[[^:]+:([^\]]+)\]/.exec(l)
        if (m) leaseLost.add(m[1]!)
      }
    // The test's own connection was dropped by the crash: a new one.
    await db.end().catch(() => undefined)
    db = new pg.Client({ connectionString: url })
    await db.connect()
    const recorded = new Map<string, string[]>()
    for (const r of (
      await db.query(`SELECT id, outcome FROM public.soak_outcomes WHERE queue = $1`, [queue])
    ).rows as Array<{ id: string; outcome: string }>)
      recorded.set(r.id, [...(recorded.get(r.id) ?? []), r.outcome])
    if (restart.up > 0)
      restart.firstOutcomeAfter =
        Number(
          (
            await db.query(
              `SELECT min(at) AS t FROM public.soak_outcomes WHERE queue = $1 AND at >= $2`,
              [queue, restart.up],
            )
          ).rows[0].t,
        ) - restart.up

    const sum = (k: '1' | '3', f: keyof Counts) => results.reduce((s, r) => s + r[k][f], 0)
    const problems: string[] = []
    let ranTwice = 0
    let ranTwiceAfterKill = 0
    let expiredWithAttempts = 0
    for (let p = 0; p < PRODUCERS; p++)
      for (let n = 0; n < share(p); n++) {
        const id = `p${p}-${n}`
        const attempts = n % 2 === 0 ? 3 : 1
        const pids = runs.get(id) ?? []
        const outs = recorded.get(id) ?? []
        if (outs.length !== 1) problems.push(`${id}: ${outs.length} recorded outcomes`)
        if (pids.length > attempts)
          problems.push(`${id}: ran ${pids.length} times, attempts ${attempts}`)
        const outcome = outs[0]
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
          if (pids.slice(0, -1).every(x => killed.has(x))) ranTwiceAfterKill++
          else if (!leaseLost.has(id))
            problems.push(`${id}: ran on ${pids} though no worker died or lost its lease`)
        }
      }
    const report = {
      tasks: TOTAL,
      seconds: elapsed / 1000,
      tasksPerSecond: Math.round(TOTAL / (elapsed / 1000)),
      workersKilled: killed.size,
      serverCrash: restart.up
        ? { downMs: restart.up - restart.down, firstOutcomeAfterMs: restart.firstOutcomeAfter }
        : 'none (the run ended first)',
      withAttempts3: {
        sent: sum('3', 'sent'),
        completed: sum('3', 'completed'),
        expired: sum('3', 'expired'),
      },
      withoutAttempts: {
        sent: sum('1', 'sent'),
        completed: sum('1', 'completed'),
        expired: sum('1', 'expired'),
      },
      failed: sum('1', 'failed') + sum('3', 'failed'),
      lost: TOTAL - recorded.size,
      wrongResults: sum('1', 'wrong') + sum('3', 'wrong'),
      unsettledDeferreds: sum('1', 'unsettled') + sum('3', 'unsettled'),
      recordedOutcomes: [...recorded.values()].reduce((s, o) => s + o.length, 0),
      executions: [...runs.values()].reduce((s, p) => s + p.length, 0),
      ranMoreThanOnce: ranTwice,
      ofThoseAfterAKill: ranTwiceAfterKill,
    }
    console.log(`      soak: ${JSON.stringify(report)}`)
    expect(problems.slice(0, 20), `${problems.length} problems`).to.deep.equal([])
    expect(report.lost).to.equal(0)
    expect(report.recordedOutcomes).to.equal(TOTAL)
    expect(report.wrongResults).to.equal(0)
    expect(report.unsettledDeferreds).to.equal(0)
    expect(report.failed).to.equal(0)
    expect(report.withAttempts3.completed + expiredWithAttempts).to.equal(report.withAttempts3.sent)
    expect(report.workersKilled).to.be.greaterThan(0)
    // At the default size the run outlasts the kills before the crash.
    if (TOTAL >= 10_000) expect(restart.up, 'the server crashed and came back').to.be.greaterThan(0)

    // Outcomes live KEEP_MS; a pool that only sweeps cleans them up. Then no row of the queue's
    // tasks, dependents or limit slots is left.
    await side.del(log)
    const janitor = new WorkerPool(getBroker(url, queue), { sweepInterval: SWEEP_MS })
    await janitor.start()
    const rows = async () =>
      Number(
        (
          await db.query(
            `SELECT (SELECT count(*) FROM worq.tasks WHERE queue = $1) + (SELECT count(*) FROM worq.deps WHERE queue = $1 OR dq = $1) + (SELECT count(*) FROM worq.holders WHERE queue = $1) AS n`,
            [queue],
          )
        ).rows[0].n,
      )
    const end = Date.now() + KEEP_MS + 3 * SWEEP_MS + 5000
    let left = await rows()
    while (left > 0 && Date.now() < end) {
      await new Promise(r => setTimeout(r, 100))
      left = await rows()
    }
    await janitor.stop()
    console.log(
      `      soak: ${left} rows of the queue left ${Date.now() - t0 - elapsed} ms after the last result`,
    )
    expect(left).to.equal(0)
    await db.query(`DROP TRIGGER soak_record ON worq.tasks`)
    await db.end()
    side.disconnect()
  })
})
