// What `replicas: 1` costs when nothing fails: a master with one replica (plain replication on
// loopback), worq with and without `WAIT 1` after each enqueue and finish, rounds interleaved.
//
//   node bench/replicas.js [tasks=20000] [rounds=3]
//
// Sequential: p50 of one call awaited at a time (1 000 calls); window: tasks per second with 50
// calls in flight (enqueue, then read the result), one pool of concurrency 50. Needs `npm run build`.
import { once } from 'node:events'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { freePort, serverArgs, spawnServer, startRedis } from './redis.js'

const { getBroker, TaskSpace, WorkerPool } = await import(
  process.env.WORQ_DIST ?? '../dist/index.js'
)
const [tasksArg = '20000', roundsArg = '3'] = process.argv.slice(2)
const TASKS = Number(tasksArg)
const ROUNDS = Number(roundsArg)

const master = await startRedis()
const port = Number(new URL(master.url).port)
const replicaPort = await freePort()
const replicaDir = mkdtempSync(join(tmpdir(), 'worq-bench-replica-'))
const replica = spawnServer(
  serverArgs(replicaPort, replicaDir, '--replicaof', '127.0.0.1', String(port)),
)
let out = ''
replica.stdout.on('data', d => (out += d))
while (!/MASTER <-> REPLICA sync: Finished/.test(out)) await once(replica.stdout, 'data')

async function measure(replicas) {
  const broker = getBroker(master.url, `r${Math.random().toString(36).slice(2, 8)}`, { replicas })
  broker.expose(new TaskSpace('', { add: (a, b) => a + b }))
  const pool = new WorkerPool(broker, { concurrency: 50 })
  await pool.start()
  const q = broker.queue()
  const one = async i => {
    if ((await (await q.add(i, 1)).result(60_000)) !== i + 1) throw new Error('wrong result')
  }
  for (let i = 0; i < 300; i++) await one(i)
  const lat = []
  for (let i = 0; i < 1000; i++) {
    const t0 = performance.now()
    await one(i)
    lat.push(performance.now() - t0)
  }
  lat.sort((a, b) => a - b)
  let next = 0
  const t0 = performance.now()
  await Promise.all(
    Array.from({ length: 50 }, async () => {
      while (next < TASKS) await one(next++)
    }),
  )
  const perSecond = Math.round(TASKS / ((performance.now() - t0) / 1000))
  await pool.stop({ timeout: 5000 })
  await broker.close()
  return { p50: +lat[500].toFixed(3), perSecond }
}

const rows = { 0: [], 1: [] }
try {
  for (let r = 0; r < ROUNDS; r++)
    for (const n of [0, 1]) {
      const m = await measure(n)
      console.error(`replicas ${n}`, JSON.stringify(m))
      rows[n].push(m)
    }
} finally {
  replica.kill('SIGTERM')
  rmSync(replicaDir, { recursive: true, force: true })
  master.stop()
}
const median = xs => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
console.log(`\n${TASKS} tasks, ${ROUNDS} rounds, medians\n`)
console.log('| replicas | sequential p50 ms | tasks/s (50 in flight) |')
console.log('| ---: | ---: | ---: |')
for (const n of [0, 1])
  console.log(
    `| ${n} | ${median(rows[n].map(m => m.p50))} | ${median(rows[n].map(m => m.perSecond))} |`,
  )
process.exit(0)
