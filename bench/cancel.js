// How long a running task takes to see its cancel: from the cancel() call to the task's signal
// aborting, 300 times, in memory and on a private Redis (docs/tasks.md quotes the figures).
//   node bench/cancel.js [count=300]
import { startRedis } from './redis.js'

const { getBroker, WorkerPool } = await import(process.env.WORQ_DIST ?? '../dist/index.js')
const count = Number(process.argv[2] ?? 300)
const redis = await startRedis()
for (const url of ['memory://', redis.url]) {
  const broker = getBroker(url, 'cancel-latency')
  const aborted = new Map()
  const waiting = new Map()
  const begun = new Set()
  broker.expose(async function hold() {
    begun.add(this.taskId)
    waiting.get(this.taskId)?.()
    await new Promise(resolve =>
      this.signal.addEventListener('abort', () => {
        aborted.get(this.taskId)?.(performance.now())
        resolve()
      }),
    )
  })
  const pool = new WorkerPool(broker, { concurrency: 4 })
  await pool.start()
  const q = broker.queue()
  const ms = []
  for (let i = 0; i < count; i++) {
    const d = await q.hold()
    await new Promise(resolve => (begun.has(d.id) ? resolve() : waiting.set(d.id, resolve)))
    const done = new Promise(resolve => aborted.set(d.id, resolve))
    const t0 = performance.now()
    await d.cancel()
    ms.push((await done) - t0)
  }
  ms.sort((a, b) => a - b)
  const at = q => ms[Math.min(ms.length - 1, Math.floor(q * ms.length))].toFixed(2)
  console.log(
    `${url.startsWith('memory') ? 'memory://' : 'redis://'} cancel → abort, ms: p50 ${at(0.5)} p99 ${at(0.99)} max ${at(1)}`,
  )
  await pool.stop()
  await broker.close()
}
await redis.stop()
