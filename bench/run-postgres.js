// The Postgres rows of npm run bench: worq on PostgreSQL against pg-boss and graphile-worker on one
// server, in a private database created for the bench and dropped at its end (bench/postgres.js),
// emptied before every run. Interleaved runs, medians and spreads as for the Redis rows, and per
// task the server's own count of transactions and rows written (pg_stat_database) and the client's
// queries (round trips).
// Env: BENCH_PG_N (tasks per run, default 5000), BENCH_PG_LIBS (default worq,pg-boss,graphile-worker),
// BENCH_PG_URL (the server's maintenance database, default postgres://postgres@127.0.0.1:5432/postgres),
// BENCH_PG_SYNC_COMMIT=on (keep the server's synchronous_commit); BENCH_REPS and BENCH_ONLY as for Redis.
import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { startPostgres } from './postgres.js'
import { key, runInterleaved, stat, tableRow } from './table.js'

const PN = Number(process.env.BENCH_PG_N ?? 5000)
export const PG_LIBS = (process.env.BENCH_PG_LIBS ?? 'worq,pg-boss,graphile-worker').split(',')

/** [scenario, n, concurrency, what the row measures], the Redis rows' scenarios the peers support. */
const SCENARIOS = [
  ['e2e-window', PN, 50, 'end to end, c=50, one call at a time with 50 in flight'],
  ['e2e-open', PN, 50, 'open loop, c=50: 50 enqueues in flight, results read as they come'],
  ['deploy', PN, 50, 'deployment: a producer and two worker processes at c=50 each'],
  ['e2e-priority', PN, 50, 'end to end, c=50, three priority levels in turn'],
  ['e2e-bulk', PN, 50, 'end to end, c=50, enqueued in bulk'],
  ['e2e-window', PN, 1, 'end to end, c=1, 50 in flight'],
  ['enqueue-single', PN, 0, 'enqueue only, single calls, 50 in flight'],
  ['enqueue-bulk', PN, 0, 'enqueue only, bulk'],
  ['drain', PN, 50, 'drain: all queued, then the worker starts (c=50)'],
  ['latency', 1000, 1, 'round trip, 1 000 sequential calls, just started'],
  ['latency-steady', 2000, 1, 'round trip after 2 000 warm-up calls, 2 000 sequential calls'],
].filter(([s]) => !process.env.BENCH_ONLY || process.env.BENCH_ONLY.split(',').includes(s))

/** Calls the runner makes before its measured ones (their statistics are counted with them). */
const WARMUP = { latency: 50, 'latency-steady': 2000 }
/** Rows whose figure depends on reading each task's result. */
const readsResults = s =>
  s.startsWith('e2e') || s.startsWith('latency') || s === 'drain' || s === 'deploy'

/** Which rows a library was skipped on: all of them, or the scenarios named. */
function skippedWhere(results, lib) {
  const where = new Set()
  let all = true
  for (const [k, byLib] of results) {
    if (byLib.get(lib)?.some(r => r.skipped)) where.add(k.split('|')[0])
    else if (byLib.has(lib)) all = false
  }
  return all ? 'on every row' : `on ${[...where].join(', ')}`
}

/**
 * Runs the Postgres rows; resolves to the section of docs/benchmarks.md they make, or to
 * `{ skipped: reason }` when the server cannot be reached.
 */
export async function postgresRows({ here, root, reps }) {
  const LIBS = PG_LIBS
  const pg = await startPostgres()
  if (pg.reason) return { skipped: pg.reason }
  console.log(`Postgres rows on ${pg.version}, private database ${pg.db}`)
  const stop = () => pg.stop().catch(() => {})
  const onSignal = async () => {
    await stop()
    process.exit(130)
  }
  process.once('SIGINT', onSignal)
  process.once('SIGTERM', onSignal)

  function runner(lib, scenario, n, c) {
    const out = execFileSync(
      process.execPath,
      [join(here, 'runner.js'), lib, scenario, String(n), String(c)],
      {
        env: { ...process.env, BENCH_URL: pg.url },
        encoding: 'utf8',
        maxBuffer: 1 << 24,
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    )
    return JSON.parse(out.trim().split('\n').at(-1))
  }
  const skipReasons = new Map()
  async function runOnce(lib, scenario, n, c) {
    await pg.reset()
    // The library's schema and queue are created by a run of their own, out of the statistics.
    const setup = runner(lib, 'setup', 0, c)
    if (setup.skipped) return setup
    const s0 = await pg.stats()
    const r = runner(lib, scenario, n, c)
    if (r.skipped) return r
    const s1 = await pg.stats()
    const tasks = n + (WARMUP[scenario] ?? 0)
    r.commitsPerTask = (s1.commits - s0.commits) / tasks
    r.rowsPerTask = (s1.rows_written - s0.rows_written) / tasks
    r.serverCpuUsPerTask = (s1.serverCpuUs - s0.serverCpuUs) / tasks
    r.tasksPerSec = (n / r.ms) * 1000
    return r
  }

  let results
  try {
    results = await runInterleaved({
      reps: reps,
      scenarios: SCENARIOS,
      libs: LIBS,
      runOnce,
      label: 'postgres ',
      onRun: (lib, r) => {
        if (r.skipped) skipReasons.set(lib, r.skipped)
      },
    })
  } finally {
    process.off('SIGINT', onSignal)
    process.off('SIGTERM', onSignal)
    await stop()
  }

  const peers = LIBS.filter(l => l !== 'worq')
  const header = `| scenario | metric | ${LIBS.join(' | ')} | ${peers.map(p => `worq/${p}`).join(' | ')} |`
  const rule = `|${'---|'.repeat(2 + LIBS.length + peers.length)}`
  const rows = []
  function row(scenario, label, metric, runsByLib, field, d) {
    const stats = LIBS.map(l => {
      const runs = runsByLib.get(l) ?? []
      if (runs.some(r => r.skipped)) return { m: NaN, text: 'n/a' }
      const s = stat(runs, field, d)
      // † no read-back: the library stores no results (see the notes under the table).
      if (readsResults(scenario) && runs.some(r => r.readsBack === false)) s.text += ' †'
      return s
    })
    rows.push(tableRow(label, metric, stats, LIBS, peers))
  }
  for (const [scenario, n, c, label] of SCENARIOS) {
    const byLib = results.get(key(scenario, n, c))
    if (!byLib) continue
    const name = `${label} (n=${n})`
    if (scenario.startsWith('latency')) {
      row(scenario, name, 'p50 ms (lower is better)', byLib, 'p50', 2)
      row(scenario, name, 'p99 ms (lower is better)', byLib, 'p99', 2)
    } else row(scenario, name, 'tasks/s', byLib, 'tasksPerSec', 0)
    row(scenario, name, 'transactions per task (pg_stat_database)', byLib, 'commitsPerTask', 2)
    row(scenario, name, 'rows written per task (pg_stat_database)', byLib, 'rowsPerTask', 2)
    if (!scenario.startsWith('enqueue'))
      row(
        scenario,
        name,
        'PostgreSQL CPU µs per task (its backends)',
        byLib,
        'serverCpuUsPerTask',
        0,
      )
    if (scenario === 'e2e-window' && c === 50) {
      row(scenario, name, 'client queries per task (round trips)', byLib, 'queriesPerTask', 2)
      row(scenario, name, 'Node CPU µs per task', byLib, 'cpuUsPerTask', 0)
      row(scenario, name, 'peak RSS MB', byLib, 'peakRssMb', 0)
    }
  }

  const version = p => {
    try {
      return JSON.parse(readFileSync(join(p, 'package.json'), 'utf8')).version
    } catch {
      return '?'
    }
  }
  const versions = [
    `worq ${version(root)}`,
    `pg-boss ${version(join(here, 'node_modules/pg-boss'))}`,
    `graphile-worker ${version(join(here, 'node_modules/graphile-worker'))}`,
    `pg ${version(join(here, 'node_modules/pg'))} (the peers')`,
    `Node.js ${process.version} (pg-boss 12 and graphile-worker 0.18 declare Node 22; both run here)`,
    pg.version,
  ]
  const skipped = [...skipReasons]
    .map(([lib, why]) => `${lib} skipped ${skippedWhere(results, lib)} (${why}): n/a.`)
    .join(' ')
  const table = `${header}\n${rule}\n${rows.join('\n')}`
  const doc = `## PostgreSQL: worq against pg-boss and graphile-worker

Written by \`npm run bench\` (bench/run-postgres.js; \`BENCH_BACKENDS=postgres npm run bench\` runs
these rows alone) on ${new Date().toISOString().slice(0, 10)}. Every library runs in a fresh Node
process against the same PostgreSQL server, in a private database the bench creates
(\`worq_bench_<random>\`), empties before every run (dropped and created again) and drops at the
end; synchronous_commit is ${pg.synchronousCommit} in it, and the server's autovacuum is
${pg.autovacuum}. Runs are interleaved and repeated
${reps} times, ${PN} tasks per run; cells show the median and the spread (min–max); ratios are
worq's median over the peer's (above 1× is better for tasks/s, below 1× for latency and for the
per-task counts). ${skipped}

Versions: ${versions.join(', ')}.
Command: \`${[
    'BENCH_BACKENDS',
    'BENCH_PG_N',
    'BENCH_REPS',
    'BENCH_ONLY',
    'BENCH_PG_LIBS',
    'BENCH_PG_SYNC_COMMIT',
    'BENCH_PG_URL',
  ]
    .filter(k => process.env[k])
    .map(k => `${k}=${process.env[k]} `)
    .join('')}npm run bench\`.

${table}

† graphile-worker stores no results and deletes a finished job's row, so nothing can be read back:
its producer learns of a completion through the runner's in-process \`job:success\` event (emitted
when the task function has resolved, before its completion is written, which graphile-worker
batches) and takes the value from the worker's memory. Its "end to end" rows are therefore the
cheaper measure, and its deployment row is n/a (the event is not seen in another process).

Transactions and rows written are the bench database's own counters in \`pg_stat_database\`
(\`xact_commit\`; \`tup_inserted + tup_updated + tup_deleted\`) over the measured run (producer and
workers, every connection; the schema's creation is done by a run of its own before, not counted),
per task; the latency rows count their warm-up calls in both the counters and the tasks. Client queries count every query a
node-postgres client of the producer's process sent (each waits for its reply: a round trip),
LISTEN connections and result polls included. A session that LISTENs reads each NOTIFY in a
transaction of its own, so every library that wakes its workers by NOTIFY shows about one
transaction per task more than it sends queries. PostgreSQL CPU is the time of the server's
backends that ended during the run (the postmaster's reaped children, /proc; on a server on this
machine only): the bench's sessions, and any other client's that ended meanwhile on a shared
server; in 10 ms ticks. How each library is driven matters as much as the library: the adapters follow each peer's own
documentation for a fast configuration (below: "The Postgres rows: how to run them, and what each
adapter does").
`
  return { doc, table }
}
