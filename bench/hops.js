// The hops of one call, end to end, on the built package: where the round-trip latency goes.
// REDIS_URL=redis://127.0.0.1:6379/0 node bench/hops.js  (a Redis you may write to)
// Prints the median µs from the call to: the enqueue confirmed, the task started, the task ended,
// the result in the caller's hands.
import { getBroker, TaskSpace, WorkerPool } from '../dist/index.js'

const b = getBroker(process.env.REDIS_URL, `hops-${Date.now()}`).expose(
  new TaskSpace('', { add: (a, c) => a + c }),
)
const pool = new WorkerPool(b, { concurrency: 1 })
const m = { enq: [], start: [], end: [], got: [] }
let t0 = 0
pool.on('task:start', () => m.start.push(performance.now() - t0))
pool.on('task:end', () => m.end.push(performance.now() - t0))
await pool.start()
const q = b.queue()
for (let i = 0; i < 3000; i++) {
  t0 = performance.now()
  const d = await q.add(i, 1)
  m.enq.push(performance.now() - t0)
  await d.result(5000)
  m.got.push(performance.now() - t0)
}
const med = xs => (xs.slice(500).sort((a, c) => a - c)[1250] * 1000).toFixed(0)
console.log(
  `median µs since the call: enqueue confirmed ${med(m.enq)}, task started ${med(m.start)}, task ended ${med(m.end)}, result ${med(m.got)}`,
)
await pool.stop()
await b.purge()
await b.close()
