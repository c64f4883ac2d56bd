// Wide graphs on each backend: one result fanned out to n dependents (the time to enqueue them,
// then to cancel the root and so end them all), and one task fanned in from n Deferred arguments
// (from the workers' start to its value). A backend whose cost per edge grows with the graph shows
// it here: the figures for n and 4n should differ by about 4×. memory://, a private Redis, and a
// private database on the local PostgreSQL (skipped when it cannot be reached).
//   node bench/wide.js [n=1000,4000,8500]
import { startPostgres } from './postgres.js'
import { startRedis } from './redis.js'

const { getBroker, task, TaskSpace, WorkerPool } = await import(
  process.env.WORQ_DIST ?? '../dist/index.js'
)
const sizes = (process.argv[2] ?? '1000,4000,8500').split(',').map(Number)

const redis = await startRedis()
const postgres = await startPostgres()
const urls = [
  ['memory', 'memory://'],
  ['redis', redis.url],
]
if (postgres.reason) console.log(`postgres skipped: ${postgres.reason}`)
else {
  await postgres.reset()
  urls.push(['postgres', postgres.url])
}

const ms = t => `${(performance.now() - t).toFixed(0)} ms`
try {
  for (const [label, url] of urls) {
    for (const n of sizes) {
      const out = getBroker(url, `wide-out-${n}`)
      const q = out.queue()
      const root = await task(q.work, { delay: 600_000 })('root')
      let t = performance.now()
      await Promise.all(Array.from({ length: n }, (_, i) => q.work(root, i)))
      const enqueued = ms(t)
      t = performance.now()
      if (!(await root.cancel())) throw new Error('the root was not cancelled')
      const cancelled = ms(t)
      await out.close()

      const inb = getBroker(url, `wide-in-${n}`)
      inb.expose(new TaskSpace('', { id: x => x, sum: xs => xs.reduce((s, x) => s + x, 0) }))
      const leaves = await Promise.all(
        Array.from({ length: n }, (_, i) => task(inb.queue().id, { delay: 100 })(i)),
      )
      const sum = await inb.queue().sum(leaves)
      const pool = new WorkerPool(inb, { concurrency: 50 })
      t = performance.now()
      await pool.start()
      const value = await sum.result(600_000)
      if (value !== (n * (n - 1)) / 2) throw new Error(`wrong sum ${value}`)
      const summed = ms(t)
      await pool.stop()
      await inb.close()
      console.log(
        `${label.padEnd(8)} n=${String(n).padEnd(5)} fan-out: enqueue ${enqueued}, ` +
          `cancel cascade ${cancelled}; fan-in: ${summed} from the workers' start to the sum`,
      )
    }
  }
} finally {
  redis.stop()
  if (!postgres.reason) await postgres.stop()
}
