/**
 * The README's first example, as a file CI runs: a TaskSpace, a worker pool and a client on the
 * embedded memory:// backend. Swap the URL for redis://127.0.0.1:6379/0 to run it on Redis.
 */
import { getBroker, getQueue, task, TaskSpace, WorkerPool } from '../lib/index.js'

// tasks: what a worker exposes
const math = new TaskSpace('math', {
  add: (a: number, b: number) => a + b,
  async sum(xs: number[]) {
    return xs.reduce((s, x) => s + x, 0)
  },
})

// worker: usually its own long-running process
const url = process.env.WORQ_URL ?? 'memory://'
const broker = getBroker(url, 'default').expose(math)
const pool = new WorkerPool(broker, { concurrency: 16 })
await pool.start()

// client: typed from the TaskSpace
const q = getQueue<typeof math>(url)
const a = await q.math.add(1, 2) // Deferred<number>, enqueue confirmed
const s = await q.math.sum([a, q.math.add(3, 4)]) // Deferreds (or promises of them) as arguments
if (await s.wait(5_000)) console.log('sum =', s.value) // 10
console.log('add =', await a.result(5_000)) // 3
await task(q.math.add, { id: 'nightly', ignoreResult: true })(1, 2) // per-call options

await pool.stop({ timeout: 10_000 })
await q[Symbol.asyncDispose]()
await broker.close()
