// memory://, the embedded backend of `npm run demo` and of tests: a closed loop of `n` calls, 50
// in flight, a pool of concurrency 50 in the same process, run twice in one process (the second
// run meets a full event log: 3 events a task against the default of 10 000 kept).
//   node bench/memory.js [n=30000]
const { getBroker, WorkerPool } = await import(process.env.WORQ_DIST ?? '../dist/index.js')
const n = Number(process.argv[2] ?? 30_000)
const broker = getBroker('memory://', 'memory-loop')
broker.expose(function add(a, b) {
  return a + b
})
const pool = new WorkerPool(broker, { concurrency: 50 })
await pool.start()
const q = broker.queue()
async function lane(k) {
  for (let i = k; i < n; i += 50) await (await q.add(i, 1)).result(60_000)
}
for (const run of [1, 2]) {
  const t0 = performance.now()
  await Promise.all(Array.from({ length: 50 }, (_, k) => lane(k)))
  console.log(`memory:// run ${run}: ${Math.round((n / (performance.now() - t0)) * 1000)} tasks/s`)
}
await pool.stop()
await broker.close()
