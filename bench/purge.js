// How long a purge holds a private Redis from its other clients: N waiting tasks enqueued, then
// `broker.purge()` while another connection sends a PING every millisecond and keeps the longest
// wait (docs/lifecycle.md, "purge", quotes the figures).
//   node bench/purge.js [tasks=100000]
import { Redis } from 'ioredis'
import { startRedis } from './redis.js'

const { getBroker } = await import(process.env.WORQ_DIST ?? '../dist/index.js')
const n = Number(process.argv[2] ?? 100_000)
const redis = await startRedis()
const broker = getBroker(redis.url, 'purge-hold')
const q = broker.queue()
for (let i = 0; i < n; i += 5000)
  await Promise.all(Array.from({ length: Math.min(5000, n - i) }, (_, j) => q.math.add(i + j, 1)))
const probe = new Redis(redis.url)
let longest = 0
let stop = false
const pinging = (async () => {
  while (!stop) {
    const t0 = performance.now()
    await probe.ping()
    longest = Math.max(longest, performance.now() - t0)
    await new Promise(resolve => setTimeout(resolve, 1))
  }
})()
const t0 = performance.now()
const count = await broker.purge()
const ms = performance.now() - t0
stop = true
await pinging
console.log(
  `purged ${count} of ${n} waiting tasks in ${ms.toFixed(0)} ms; the longest PING wait meanwhile ${longest.toFixed(1)} ms`,
)
probe.disconnect()
await broker.close()
await redis.stop()
