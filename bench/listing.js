// Listing a big queue: fills one queue on a private Redis with a million tasks of mixed statuses,
// then times pages of `broker.tasks()` (docs/tasks.md quotes the figures).
//   node bench/listing.js [total=1000000]
// Mix: 70 % completed, 10 % failed, 15 % enqueued (delayed an hour), 5 % pending (waiting for a
// task on another queue that never runs).
import { startRedis } from './redis.js'

const { getBroker, task, TaskSpace, WorkerPool } = await import(
  process.env.WORQ_DIST ?? '../dist/index.js'
)
const total = Number(process.argv[2] ?? 1_000_000)
const redis = await startRedis()
const broker = getBroker(redis.url, 'big')
broker.expose(
  new TaskSpace('jobs', {
    ok: n => n,
    bad: () => {
      throw new Error('bad')
    },
  }),
)
const q = broker.queue('', { resultTimeout: 3_600_000 })
const never = await getBroker(redis.url, 'elsewhere').queue().never()
const t0 = Date.now()
const counts = { ok: 0, bad: 0, later: 0, pending: 0 }
const pool = new WorkerPool(broker, { concurrency: 50 })
await pool.start()
for (let i = 0; i < total; i += 1000) {
  const calls = []
  for (let j = i; j < Math.min(i + 1000, total); j++) {
    const r = j % 20
    if (r < 14) {
      counts.ok++
      calls.push(q.jobs.ok(j))
    } else if (r < 16) {
      counts.bad++
      calls.push(q.jobs.bad())
    } else if (r < 19) {
      counts.later++
      calls.push(task(q.jobs.ok, { delay: 3_600_000 })(j))
    } else {
      counts.pending++
      calls.push(q.jobs.ok(never))
    }
  }
  await Promise.all(calls)
  if (i % 100_000 === 0)
    process.stderr.write(`enqueued ${i} (${Math.round((Date.now() - t0) / 1000)} s)\n`)
}
while ((await broker.inspect()).waiting + (await broker.inspect()).processing > 0)
  await new Promise(r => setTimeout(r, 500))
await pool.stop()
process.stderr.write(
  `filled ${total} in ${Math.round((Date.now() - t0) / 1000)} s: ${JSON.stringify(counts)}\n`,
)

async function time(label, filter) {
  const runs = []
  let got = 0
  for (let i = 0; i < 7; i++) {
    const s = performance.now()
    got = (await broker.tasks(filter)).length
    runs.push(performance.now() - s)
  }
  runs.sort((a, b) => a - b)
  console.log(`| ${label} | ${got} | ${runs[3].toFixed(1)} | ${runs[6].toFixed(1)} |`)
}
console.log(`\n${total} tasks. Each page timed 7 times: median and slowest, ms.\n`)
console.log('| page | tasks | median ms | slowest ms |\n|---|---|---|---|')
await time('newest 100', { limit: 100 })
await time('100 at offset 500 000', { limit: 100, offset: 500_000 })
await time('100 failed', { status: 'failed', limit: 100 })
await time('100 completed', { status: 'completed', limit: 100 })
await time('100 enqueued', { status: 'enqueued', limit: 100 })
await time('100 pending', { status: 'pending', limit: 100 })
await time('100 named jobs.bad', { name: 'jobs.bad', limit: 100 })
await time('100 in the namespace jobs.', { name: 'jobs.', limit: 100 })
await time('100 older than a minute', { olderThan: 60_000, limit: 100 })
await broker.close()
await redis.stop()
process.exit(0)
