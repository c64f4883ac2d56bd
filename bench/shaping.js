// What shaping costs on Redis (docs/cache.md and docs/limits.md quote the figures):
// 1. cache hits: a value cached by one call, then `n` identical calls with `cache: true` while no
//    worker runs (a miss would never end), 50 in flight: calls per second, client writes and
//    Redis commands per call;
// 2. a limited task beside unlimited ones: `n` unlimited calls end to end at concurrency 50, alone
//    and while a task with a concurrency limit of 2 (5 ms each, one call per 20 unlimited ones)
//    runs beside them, in interleaved rounds: the unlimited calls' throughput both ways.
//   node bench/shaping.js [n=20000] [rounds=3]
import net from 'node:net'
import { commandTotals, startRedis } from './redis.js'

const { getBroker, task, TaskSpace, WorkerPool } = await import(
  process.env.WORQ_DIST ?? '../dist/index.js'
)
const n = Number(process.argv[2] ?? 20_000)
const rounds = Number(process.argv[3] ?? 3)
const redis = await startRedis()
const port = Number(new URL(redis.url).port)
let writes = 0
const write = net.Socket.prototype.write
net.Socket.prototype.write = function (...args) {
  if (this.remotePort === port) writes++
  return write.apply(this, args)
}
const { default: Redis } = await import('../node_modules/ioredis/built/index.js')
const admin = new Redis(redis.url)
const commands = async () => commandTotals(await admin.info('commandstats')).calls
const space = new TaskSpace('', {
  add: (a, b) => a + b,
  slow: () => new Promise(resolve => setTimeout(resolve, 5)),
})

/** Runs `lanes` lanes that each make calls while `next()` gives an index. */
async function lanes(count, total, one) {
  let next = 0
  await Promise.all(
    Array.from({ length: count }, async () => {
      while (next < total) await one(next++)
    }),
  )
}

async function cacheHits() {
  await admin.flushall()
  const broker = getBroker(redis.url, 'cache')
  broker.expose(space)
  const add = task(broker.queue().add, { cache: true })
  const pool = new WorkerPool(broker, { concurrency: 50 })
  await pool.start()
  await (await add(1, 2)).result(10_000)
  await pool.stop()
  await admin.config('RESETSTAT')
  const [w0, c0, t0] = [writes, await commands(), performance.now()]
  await lanes(50, n, async () => {
    const d = await add(1, 2)
    if (!d.cached || (await d.result(10_000)) !== 3) throw new Error('not a cache hit')
  })
  const ms = performance.now() - t0
  const out = {
    callsPerSec: Math.round((n / ms) * 1000),
    writesPerCall: (writes - w0) / n,
    commandsPerCall: ((await commands()) - c0 - 1) / n,
  }
  await broker.close()
  return out
}

async function unlimitedRate(withLimited) {
  await admin.flushall()
  const broker = getBroker(redis.url, 'limits')
  broker.expose(space)
  const q = broker.queue()
  await broker.limit('slow', { concurrency: 2 })
  const pool = new WorkerPool(broker, { concurrency: 50 })
  await pool.start()
  const limited = []
  const t0 = performance.now()
  await lanes(50, n, async i => {
    if (withLimited && i % 20 === 0) limited.push((await q.slow()).result(600_000))
    const v = await (await q.add(i, 1)).result(60_000)
    if (v !== i + 1) throw new Error(`wrong result ${v}`)
  })
  const ms = performance.now() - t0
  await Promise.all(limited)
  await pool.stop()
  await broker.close()
  return Math.round((n / ms) * 1000)
}

const median = xs => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
try {
  const hits = []
  const alone = []
  const beside = []
  for (let r = 0; r < rounds; r++) {
    hits.push(await cacheHits())
    alone.push(await unlimitedRate(false))
    beside.push(await unlimitedRate(true))
    console.log(
      `round ${r + 1}: ${JSON.stringify({ hit: hits.at(-1), alone: alone.at(-1), beside: beside.at(-1) })}`,
    )
  }
  const hit = hits.sort((a, b) => a.callsPerSec - b.callsPerSec)[Math.floor(rounds / 2)]
  console.log(
    JSON.stringify({
      n,
      rounds,
      cacheHit: hit,
      unlimitedAlone: median(alone),
      unlimitedBesideLimited: median(beside),
      ratio: +(median(beside) / median(alone)).toFixed(3),
    }),
  )
} finally {
  admin.disconnect()
  redis.stop()
}
process.exit(0)
