// npm run bench: worq against BullMQ and bee-queue on one private Redis, interleaved runs,
// medians, spreads and ratios from the same run; writes docs/benchmarks.md.
// Then the Postgres rows (bench/run-postgres.js): worq on PostgreSQL against pg-boss and
// graphile-worker on one server, when a PostgreSQL server is reachable.
// Env: BENCH_N (tasks per run, default 20000), BENCH_REPS (default 3), BENCH_ONLY (comma list of
// scenarios), BENCH_LIBS (comma list of libraries), BENCH_BACKENDS (comma list of redis, postgres:
// the sections to run, default both; the other section's text in docs/benchmarks.md is kept),
// BENCH_REDIS_CPUS (the CPUs the private Redis's main thread is kept on, Redis's `server_cpulist`:
// such a run is kept apart from the others in "The last 3 runs").
// The Postgres rows' own settings (BENCH_PG_N, BENCH_PG_LIBS, BENCH_PG_URL) are in run-postgres.js.
import { execFileSync, execSync } from 'node:child_process'
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { machinePace, paceText } from './pace.js'
import { commandTotals, SERVER_SESSION, serverCpuUs, startRedis } from './redis.js'
import { PG_LIBS, postgresRows } from './run-postgres.js'
import { key, runInterleaved, stat, tableRow } from './table.js'

const here = dirname(fileURLToPath(import.meta.url))
const root = join(here, '..')
const N = Number(process.env.BENCH_N ?? 20000)
const REPS = Number(process.env.BENCH_REPS ?? 3)
/** Every library of the Redis rows; the last runs' ratios always name all of them. */
const ALL_LIBS = ['worq', 'bullmq', 'bee-queue']
const LIBS = (process.env.BENCH_LIBS ?? ALL_LIBS.join(',')).split(',')
const BACKENDS = (process.env.BENCH_BACKENDS ?? 'redis,postgres').split(',')

/** [scenario, n, concurrency, what the row measures] */
const SCENARIOS = [
  ['e2e-window', N, 50, 'end to end, c=50, one call at a time with 50 in flight'],
  [
    'e2e-open',
    N,
    50,
    'open loop, c=50: enqueued with 50 calls in flight, results read as they come',
  ],
  [
    'deploy',
    N,
    50,
    'deployment: a producer and two worker processes at c=50 each, 100 calls in flight',
  ],
  ['e2e-window-steady', N, 50, 'closed loop as above, after as many calls of warm-up'],
  ['e2e-open-steady', N, 50, 'open loop as above, after as many calls of warm-up'],
  ['deploy-steady', N, 50, 'deployment as above, after as many calls of warm-up'],
  ['e2e-priority', N, 50, 'end to end, c=50, three priority levels in turn (not in bee-queue)'],
  ['e2e-bulk', N, 50, 'end to end, c=50, enqueued in bulk'],
  ['e2e-window', N, 1, 'end to end, c=1, 50 in flight'],
  ['e2e-window', N / 10, 50, 'end to end, c=50, a tenth of the tasks (scaling)'],
  ['enqueue-single', N, 0, 'enqueue only, single calls, 50 in flight'],
  ['enqueue-bulk', N, 0, 'enqueue only, bulk'],
  ['drain', N, 50, 'drain: all queued, then the worker starts (c=50)'],
  ['latency', 1000, 1, 'round trip, 1 000 sequential calls'],
  ['latency-steady', 5000, 1, 'round trip after 2 000 warm-up calls, 5 000 sequential calls'],
  ['graph', N / 10, 50, 'fan-in trees of 10 leaves (flows for BullMQ)'],
].filter(([s]) => !process.env.BENCH_ONLY || process.env.BENCH_ONLY.split(',').includes(s))

// bench/ has its own dependencies (the peers); `npm install`, not `npm ci`, with this lockfile.
const PEERS = ['bullmq', 'bee-queue', 'pg-boss', 'graphile-worker', 'pg']
if (!PEERS.every(p => existsSync(join(here, 'node_modules', p, 'package.json')))) {
  console.log('installing bench dependencies…')
  execSync('npm install --no-audit --no-fund', { cwd: here, stdio: 'inherit' })
}
if (
  (BACKENDS.includes('redis') && LIBS.includes('worq')) ||
  (BACKENDS.includes('postgres') && PG_LIBS.includes('worq'))
) {
  console.log('building worq…')
  execSync('npm run build', { cwd: root, stdio: 'inherit' })
}

// docs/benchmarks.md: the Redis section, then the Postgres section, then the sections written by
// hand; a section not run this time keeps its text.
let redisDoc = null
let redisRuns = null
let redisTable = null
if (BACKENDS.includes('redis')) {
  const { default: Redis } = await import(join(root, 'node_modules/ioredis/built/index.js'))
  const redis = await startRedis()
  const admin = new Redis(redis.url)
  // The machine's pace before and after the runs (bench/pace.js): shown beside the last runs.
  const pace = { start: await machinePace(admin) }

  /** The Redis server's memory in use, in bytes. */
  const usedMemory = info => Number(/used_memory:(\d+)/.exec(info)[1])

  async function runOnce(lib, scenario, n, c) {
    await admin.flushall()
    await admin.config('RESETSTAT')
    const mem0 = usedMemory(await admin.info('memory'))
    const cpu0 = serverCpuUs(await admin.info('cpu'))
    const out = execFileSync(
      process.execPath,
      [join(here, 'runner.js'), lib, scenario, String(n), String(c)],
      {
        env: { ...process.env, REDIS_URL: redis.url },
        encoding: 'utf8',
        maxBuffer: 1 << 24,
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    )
    const r = JSON.parse(out.trim().split('\n').at(-1))
    // A row after warm-up reads the server's CPU around its measured part itself.
    r.redisCpuUsPerTask = (r.redisCpuUs ?? serverCpuUs(await admin.info('cpu')) - cpu0) / n
    const stats = commandTotals(await admin.info('commandstats'))
    r.commandsPerTask = stats.calls / n
    r.commandUsPerTask = stats.usec / n
    r.bytesPerTask = (usedMemory(await admin.info('memory')) - mem0) / n
    r.tasksPerSec = (n / r.ms) * 1000
    return r
  }

  let results
  try {
    results = await runInterleaved({
      reps: REPS,
      scenarios: SCENARIOS,
      libs: LIBS,
      runOnce,
      label: '',
    })
    pace.end = await machinePace(admin)
  } finally {
    admin.disconnect()
    redis.stop()
  }

  const peers = LIBS.filter(l => l !== 'worq')
  const header = `| scenario | metric | ${LIBS.join(' | ')} | ${peers.map(p => `worq/${p}`).join(' | ')} |`
  const rule = `|${'---|'.repeat(2 + LIBS.length + peers.length)}`
  const rows = []
  function row(label, metric, runsByLib, field, d) {
    const stats = LIBS.map(l =>
      runsByLib.get(l)?.some(r => r.skipped)
        ? { m: NaN, text: 'n/a' }
        : stat(runsByLib.get(l) ?? [], field, d),
    )
    rows.push(tableRow(label, metric, stats, LIBS, peers))
  }
  for (const [scenario, n, c, label] of SCENARIOS) {
    const byLib = results.get(key(scenario, n, c))
    if (!byLib) continue
    const name = `${label} (n=${n})`
    if (scenario.startsWith('latency')) {
      row(name, 'p50 ms (lower is better)', byLib, 'p50', 3)
      row(name, 'p99 ms (lower is better)', byLib, 'p99', 3)
    } else {
      row(name, 'tasks/s', byLib, 'tasksPerSec', 0)
      if (scenario.startsWith('e2e') || scenario.startsWith('deploy') || scenario === 'drain')
        row(name, 'Redis CPU µs per task (INFO cpu)', byLib, 'redisCpuUsPerTask', 1)
    }
    if (scenario === 'e2e-window' && c === 50 && n === N) {
      row(name, 'Redis command µs per task (INFO commandstats)', byLib, 'commandUsPerTask', 1)
      row(name, 'Redis commands per task (INFO commandstats)', byLib, 'commandsPerTask', 2)
      row(name, 'client writes per task (round trips)', byLib, 'writesPerTask', 2)
      row(name, 'Redis memory per stored result, bytes', byLib, 'bytesPerTask', 0)
      row(name, 'Node CPU µs per task', byLib, 'cpuUsPerTask', 0)
      row(name, 'peak RSS MB', byLib, 'peakRssMb', 0)
    }
  }

  // This run's medians, kept in bench/results/ (one file per run), and the ratios of the rows the
  // targets are judged on in the last three runs, side by side.
  const JUDGED = [
    ['e2e-window', N, 50, 'closed loop, c=50'],
    ['e2e-open', N, 50, 'open loop, c=50'],
    ['deploy', N, 50, 'deployment, 1 producer + 2 workers'],
    ['latency-steady', 5000, 1, 'latency after warm-up'],
  ]
  // Shown beside them, not judged: the same throughput rows after warm-up (the result files of
  // runs before 02:03 on 2026-12-07 keep none: their cells show —).
  const SHOWN = [
    ...JUDGED,
    ['e2e-window-steady', N, 50, 'closed loop after warm-up (not judged)'],
    ['e2e-open-steady', N, 50, 'open loop after warm-up (not judged)'],
    ['deploy-steady', N, 50, 'deployment after warm-up (not judged)'],
  ]
  const medians = {}
  for (const [scenario, n, c] of SHOWN) {
    const byLib = results.get(key(scenario, n, c))
    if (!byLib) continue
    medians[key(scenario, n, c)] = Object.fromEntries(
      LIBS.map(l => [
        l,
        Object.fromEntries(
          ['tasksPerSec', 'p50', 'p99', 'redisCpuUsPerTask']
            .map(f => [f, stat(byLib.get(l) ?? [], f, 1).m])
            .filter(([, v]) => Number.isFinite(v)),
        ),
      ]),
    )
  }
  const resultsDir = join(here, 'results')
  const redisCpus = process.env.BENCH_REDIS_CPUS ?? ''
  mkdirSync(resultsDir, { recursive: true })
  const stamp = new Date().toISOString().replace(/[:.]/g, '-')
  if (Object.keys(medians).length > 0)
    writeFileSync(
      join(resultsDir, `${stamp}.json`),
      JSON.stringify(
        {
          at: stamp,
          pace,
          reps: REPS,
          ...(redisCpus ? { redisCpus } : {}),
          serverSession: SERVER_SESSION,
          medians,
        },
        null,
        1,
      ),
    )
  // A run the targets are judged on measured every judged row of every library, at this run's N,
  // with at least 3 repetitions (files from before `reps` was written were full runs or deleted);
  // a partial run (BENCH_ONLY, BENCH_LIBS, BENCH_REPS below 3) keeps its file but not a column.
  const complete = run =>
    (run.reps ?? 3) >= 3 &&
    JUDGED.every(([scenario, n, c]) => {
      const m = run.medians[key(scenario, n, c)]
      const f = scenario.startsWith('latency') ? 'p99' : 'tasksPerSec'
      return ALL_LIBS.every(l => Number.isFinite(m?.[l]?.[f]))
    })
  // The last full runs of this run's layout: a run with Redis kept on given CPUs is not mixed with
  // the others, nor one whose server ran in the benchmark's own session (the files without
  // `serverSession`, from before 03:58 on 2026-12-07: bench/redis.js, spawnServer).
  const lastRuns = readdirSync(resultsDir)
    .filter(f => f.endsWith('.json'))
    .sort()
    .map(f => JSON.parse(readFileSync(join(resultsDir, f), 'utf8')))
    .filter(
      run =>
        (run.redisCpus ?? '') === redisCpus &&
        (run.serverSession ?? 'shared') === SERVER_SESSION &&
        complete(run),
    )
    .slice(-3)
  const ratio = (w, p, lower) =>
    Number.isFinite(w) && Number.isFinite(p) && p > 0
      ? `${(lower ? p / w : w / p).toFixed(2)}×`
      : '—'
  const runRows = []
  for (const [scenario, n, c, label] of SHOWN) {
    const k = key(scenario, n, c)
    const cells = lastRuns.map(run => {
      const m = run.medians[k]
      if (!m?.worq) return '—'
      const lat = scenario.startsWith('latency')
      const f = lat ? 'p99' : 'tasksPerSec'
      // All libraries: a run shown here measured each of them.
      const parts = ALL_LIBS.filter(l => l !== 'worq').map(
        p => `${p} ${ratio(m.worq[f], m[p]?.[f], lat)}`,
      )
      if (!lat)
        parts.push(
          `Redis µs ${ALL_LIBS.map(l => (m[l]?.redisCpuUsPerTask ?? NaN).toFixed(1)).join(' / ')}`,
        )
      return parts.join('; ')
    })
    runRows.push(`| ${label} | ${cells.join(' | ')} |`)
  }
  runRows.push(
    `| machine pace, start → end (lower is faster) | ${lastRuns
      .map(run => (run.pace ? `${paceText(run.pace.start)} → ${paceText(run.pace.end)}` : '—'))
      .join(' | ')} |`,
  )
  const runsSection =
    lastRuns.length === 0
      ? ''
      : `## The last ${lastRuns.length} runs

  Each \`npm run bench\` keeps its medians in bench/results/; these are the ratios of worq over each
  peer in the last full runs (every judged row of every library, 3 repetitions or more: a run with
  \`BENCH_ONLY\`, \`BENCH_LIBS\` or fewer repetitions keeps its file but is not shown, and so do
  the runs before 03:58 on 2026-12-07, whose server ran in the benchmark's own session), the runs
  that the targets are judged on (throughput: above 1× is worq faster; latency after warm-up, p99:
  the peer's over worq's, above 1× is worq faster), and each library's Redis CPU per task
  (${LIBS.join(' / ')}). The rows marked "not judged" are the same throughput rows after as many
  calls of warm-up (— where a run kept none: runs before 02:03 on 2026-12-07). The last row is the
  machine's pace when the run started and ended (bench/pace.js: a fixed Lua loop in the private
  Redis and a fixed Node loop, best of three): a run whose pace is slow came in a slow spell of
  this shared machine.

  | row | ${lastRuns.map(r => r.at.slice(0, 16).replace('T', ' ')).join(' | ')} |
  |---|${'---|'.repeat(lastRuns.length)}
  ${runRows.join('\n')}
  `

  const version = p => JSON.parse(readFileSync(join(p, 'package.json'), 'utf8')).version
  const versions = [
    `worq ${version(root)}`,
    `bullmq ${version(join(here, 'node_modules/bullmq'))}`,
    `bee-queue ${version(join(here, 'node_modules/bee-queue'))}`,
    `ioredis ${version(join(root, 'node_modules/ioredis'))}`,
    `Node.js ${process.version}`,
    redis.version,
  ]
  const cpus = os.cpus()
  const doc = `# Benchmarks

  Written by \`npm run bench\` (bench/run.js) on ${new Date().toISOString().slice(0, 10)}. Every library runs in
  a fresh Node process against the same private \`redis-server\` on loopback, flushed before each run
  and started in a session of its own, as a Redis service runs (bench/redis.js, \`spawnServer\`);
  runs are interleaved (worq, BullMQ, bee-queue, worq, …) and repeated ${REPS} times. Cells show the
  median and, in parentheses, the spread (min–max). Ratios are worq's median over the peer's, from
  this same run: above 1× is better for tasks/s, below 1× is better for latency, commands, writes,
  bytes, CPU and RSS.

  Results are stored and read back by the producer in every scenario: worq through
  \`Deferred.result()\`, BullMQ through the \`completed\` events of one \`QueueEvents\` (the result
  stays in the job hash; \`BULLMQ_RESULTS=wait\` uses \`job.waitUntilFinished()\` instead), bee-queue through the job's \`succeeded\` event — bee-queue does not store results, so its
  "read back" is an event and its memory row counts only the job records it keeps.

  Machine: ${cpus.length} × ${cpus[0]?.model ?? 'unknown CPU'}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, ${os.type()} ${os.release()}.
  Versions: ${versions.join(', ')}.
  Command: \`${['BENCH_N', 'BENCH_REPS', 'BENCH_ONLY', 'BENCH_LIBS', 'BENCH_REDIS_CPUS']
    .filter(k => process.env[k])
    .map(k => `${k}=${process.env[k]} `)
    .join('')}npm run bench\`.

  ${header}
  ${rule}
  ${rows.join('\n')}

  Redis CPU per task is the server's own CPU time (\`INFO cpu\`, user and system, every thread)
  over the run, divided by the tasks: what bounds a deployment where many workers share one Redis.
  The commandstats row adds up the \`usec\` of every command and function the run called, Lua-issued
  commands included (so a script's inner commands count twice: in the script's time and their own);
  it is wall time inside Redis and grows when the machine is busy. The open-loop row enqueues every
  call with 50 enqueues in flight and reads the results as they come; the deployment row runs a
  producer process and two worker processes (each library the same way), the producer keeping 100
  calls in flight and reading every result; its Node CPU adds the workers'. BullMQ reads results
  through one \`QueueEvents\` listener (the fastest way it offers a producer). The rows "after as
  many calls of warm-up" run the same loop twice in one process (the deployment's workers too)
  and measure the second time, as a long-running service sees it; their Redis CPU is read around
  the measured part only. The rows above them measure a process just started, whose code is still
  being compiled for much of a run of 20 000 calls; the targets are judged on those.

  ${runsSection}
  Absolute numbers drift on this shared 2-core machine; the ratios come from interleaved runs of the
  same session and are the figures to compare. "Client writes" counts writes to Redis sockets in the
  benchmark process, an approximation of round trips (a pipelined batch is one write).
  `
  // The templates above are indented with the code: take that indentation off.
  redisDoc = doc.replace(/^ {2}/gm, '')
  redisRuns = runsSection.replace(/^ {2}/gm, '')
  redisTable = header + '\n' + rule + '\n' + rows.join('\n')
}

let pgDoc = null
let pgTable = null
if (BACKENDS.includes('postgres')) {
  const pg = await postgresRows({ here, root, reps: REPS })
  if (pg.skipped) console.log(`\nPostgres rows skipped: ${pg.skipped}`)
  else ({ doc: pgDoc, table: pgTable } = pg)
}

// The sections written by hand (other benchmarks: scale-out, cluster) follow a marker and are kept;
// the Postgres section, generated, starts at its own marker.
const MARKER = '<!-- written by hand below: kept by npm run bench -->'
const PG_MARKER = '<!-- Postgres rows: written by npm run bench -->'
const target = join(root, 'docs/benchmarks.md')
const before = existsSync(target) ? readFileSync(target, 'utf8') : ''
const handAt = before.includes(MARKER) ? before.indexOf(MARKER) : before.length
const pgAt = before.includes(PG_MARKER) ? before.indexOf(PG_MARKER) : handAt
const kept = before.slice(handAt)
const redisBefore = before.slice(0, pgAt).trimEnd() + '\n'
const pgBefore = before.slice(pgAt, handAt).trimEnd() + '\n'
// A partial run (BENCH_ONLY, BENCH_LIBS; BENCH_PG_LIBS for the Postgres rows) keeps the last full
// run's tables and refreshes only the Redis section of the last runs' ratios (from full runs
// alone); a full run rewrites the sections it ran.
const RUNS = /## The last \d+ runs[\s\S]*?(?=\nAbsolute numbers drift)/
const partial = Boolean(process.env.BENCH_ONLY || process.env.BENCH_LIBS)
const pgPartial = Boolean(process.env.BENCH_ONLY || process.env.BENCH_PG_LIBS)
let redisText = redisBefore
if (redisDoc && partial && RUNS.test(redisBefore))
  // With no full run at this run's N and repetitions, the last runs' section is left as it was.
  redisText = redisRuns ? redisBefore.replace(RUNS, redisRuns) : redisBefore
else if (redisDoc) redisText = redisDoc
const pgText = pgDoc && !(pgPartial && pgBefore.trim()) ? `${PG_MARKER}\n\n${pgDoc}` : pgBefore
writeFileSync(target, [redisText, pgText.trim() ? pgText : '', kept].filter(Boolean).join('\n'))
if (redisTable) console.log('\n' + redisTable)
if (pgTable) console.log('\n' + pgTable)
const keptTables = [
  redisDoc &&
    redisText !== redisDoc &&
    `the Redis table${redisText !== redisBefore ? ' (its last runs refreshed)' : ''}`,
  pgDoc && !pgText.includes(pgDoc) && 'the Postgres table',
].filter(Boolean)
console.log(
  keptTables.length
    ? `\na partial run: kept ${keptTables.join(' and ')} in docs/benchmarks.md`
    : '\nwrote docs/benchmarks.md',
)
