// Two builds of worq, A and B, on one scenario, in interleaved pairs (A B A B …) on a private
// redis-server: the way to tell whether a change helps on this noisy machine, where absolute figures
// drift by 10–25 % within minutes.
//
//   node bench/ab.js <A index.js> <B index.js> [scenario=e2e-window] [n=20000] [concurrency=50] [pairs=8]
//
// A and B are absolute paths of built copies (e.g. `cp -r dist /tmp/a` before a change and
// `npm run build && cp -r dist /tmp/b` after; the copies must sit where `ioredis` resolves, or
// next to a `node_modules` link). Scenarios are runner.js's. Prints each pair and the median of the
// pair ratios B/A: tasks/s (above 1 is B faster) and Node CPU µs per task (below 1 is B cheaper)
// for throughput scenarios, p50 and p99 for the latency ones (below 1 is B faster).
import { execFileSync } from 'node:child_process'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { startRedis } from './redis.js'

const here = dirname(fileURLToPath(import.meta.url))
const [, , a, b, scenario = 'e2e-window', nArg = '20000', cArg = '50', pairsArg = '8'] =
  process.argv
if (!a || !b) {
  console.error(
    'usage: node bench/ab.js <A index.js> <B index.js> [scenario] [n] [concurrency] [pairs]',
  )
  process.exit(2)
}
const latency = scenario.startsWith('latency')
const metrics = latency ? ['p50', 'p99'] : ['tasksPerSec', 'cpuUsPerTask']
/** Metrics where lower is better. */
const lower = new Set(['p50', 'p99', 'cpuUsPerTask'])

// Each run on a redis-server of its own: in one server for all runs, every run found the keys the
// runs before it left (an hour's outcomes, the listing, the event streams), so the second run of a
// pair met more than the first, and both builds' function libraries shared one Lua heap.
async function run(dist) {
  const redis = await startRedis()
  try {
    const out = execFileSync(
      process.execPath,
      [join(here, 'runner.js'), 'worq', scenario, nArg, cArg],
      {
        env: { ...process.env, REDIS_URL: redis.url, WORQ_DIST: dist },
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    )
    const r = JSON.parse(out.trim().split('\n').at(-1))
    r.tasksPerSec = (r.n / r.ms) * 1000
    return r
  } finally {
    redis.stop()
  }
}

const median = xs => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]
const ratios = Object.fromEntries(metrics.map(m => [m, []]))
for (let i = 1; i <= Number(pairsArg); i++) {
  const ra = await run(a)
  const rb = await run(b)
  const cells = metrics.map(m => {
    ratios[m].push(rb[m] / ra[m])
    return `${m} ${ra[m].toFixed(3)} → ${rb[m].toFixed(3)} (${(rb[m] / ra[m]).toFixed(3)})`
  })
  console.log(`pair ${i}: ${cells.join('; ')}`)
}
for (const m of metrics) {
  const rs = ratios[m]
  const better = rs.filter(r => (lower.has(m) ? r < 1 : r > 1)).length
  console.log(
    `${m}: median pair ratio B/A ${median(rs).toFixed(3)} over ${rs.length} pairs (${better} with B better)`,
  )
}
