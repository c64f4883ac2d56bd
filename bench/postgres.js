// worq on postgres:// alone (no peers yet): end to end at concurrency 50 and 1 with 50 calls in
// flight, bulk enqueue, drain of queued tasks, and sequential round-trip latency, on a private
// database of the local server (dropped after). Uses the built package: npm run build first.
// Env: BENCH_N (tasks per run, default 5000), PG_ADMIN_URL (default postgres://postgres@127.0.0.1:5432/postgres).
import { randomBytes } from 'node:crypto'
import pg from 'pg'
import { create } from './adapters/worq.js'

const N = Number(process.env.BENCH_N ?? 5000)
const ADMIN = process.env.PG_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres'

async function admin(sql) {
  const c = new pg.Client({ connectionString: ADMIN })
  await c.connect()
  try {
    await c.query(sql)
  } finally {
    await c.end()
  }
}

const db = `worq_bench_${randomBytes(4).toString('hex')}`
await admin(`CREATE DATABASE ${db}`)
const u = new URL(ADMIN)
u.pathname = `/${db}`
const url = u.toString()
const rows = []
let queueNo = 0

async function run(label, fn) {
  const lib = await create(url, { concurrency: fn.concurrency ?? 50, queue: `b${queueNo++}` })
  try {
    const t0 = performance.now()
    const extra = await fn(lib)
    const s = (performance.now() - t0) / 1000
    rows.push({ label, perSecond: Math.round((fn.n ?? N) / s), ...extra })
  } finally {
    await lib.close()
  }
}

/** Calls with `inFlight` outstanding at any time, each result read back. */
async function window(lib, n, inFlight) {
  let next = 0
  async function lane() {
    while (next < n) {
      const i = next++
      const d = await lib.add(i, 1)
      if ((await lib.result(d)) !== i + 1) throw new Error('wrong result')
    }
  }
  await Promise.all(Array.from({ length: inFlight }, lane))
}

try {
  await run('end to end, concurrency 50, 50 calls in flight', async lib => {
    await lib.startWorker()
    await window(lib, N, 50)
  })
  await run(
    'end to end, concurrency 1, 50 calls in flight',
    Object.assign(
      async lib => {
        await lib.startWorker()
        await window(lib, N, 50)
      },
      { concurrency: 1 },
    ),
  )
  await run('enqueue in bulk (no worker)', async lib => {
    const ds = []
    for (let i = 0; i < N; i += 1000)
      ds.push(
        ...(await lib.addBulk(Array.from({ length: Math.min(1000, N - i) }, (_, k) => [i + k, 1]))),
      )
  })
  {
    const lib = await create(url, { concurrency: 50, queue: 'drain' })
    const ds = []
    for (let i = 0; i < N; i += 1000)
      ds.push(
        ...(await lib.addBulk(Array.from({ length: Math.min(1000, N - i) }, (_, k) => [i + k, 1]))),
      )
    const t0 = performance.now()
    await lib.startWorker()
    await Promise.all(ds.map(d => lib.result(d)))
    rows.push({
      label: `drain ${N} queued tasks (concurrency 50)`,
      perSecond: Math.round(N / ((performance.now() - t0) / 1000)),
    })
    await lib.close()
  }
  {
    const lib = await create(url, { concurrency: 1, queue: 'latency' })
    await lib.startWorker()
    const ms = []
    for (let i = 0; i < 1500; i++) {
      const t0 = performance.now()
      await lib.result(await lib.add(i, 1))
      if (i >= 500) ms.push(performance.now() - t0)
    }
    ms.sort((a, b) => a - b)
    const at = p => ms[Math.floor(p * (ms.length - 1))].toFixed(2)
    rows.push({
      label: 'round trip of one call, after 500 warm-up calls (ms)',
      p50: at(0.5),
      p99: at(0.99),
    })
    await lib.close()
  }
} finally {
  await admin(`DROP DATABASE IF EXISTS ${db} WITH (FORCE)`)
}
console.log(`worq on postgres://, ${N} tasks per run`)
for (const r of rows) console.log(JSON.stringify(r))
