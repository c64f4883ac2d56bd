// What a Deferred argument on another queue costs: the one-step path of a single server against
// the two-step hand-over of a cluster (docs/cluster.md), on one Redis (the cluster's code path
// forced with the internal `crossSlot: 'split'`) and on a 3-master cluster.
//
//   node bench/cross-queue.js [graphs=5000] [rounds=3]
//
// Each graph is `b.add(a.func(i), 1)`: a task on queue A, its dependent on queue B; workers of both
// queues run in this process. Sequential: p50 of one graph awaited at a time (500 graphs); window:
// graphs per second with 50 in flight. Rounds alternate the modes. Needs `npm run build`.
import { startRedis } from './redis.js'
import { startCluster } from './cluster.js'

const { getBroker, TaskSpace, WorkerPool } = await import(
  process.env.WORQ_DIST ?? '../dist/index.js'
)
const [graphsArg = '5000', roundsArg = '3'] = process.argv.slice(2)
const GRAPHS = Number(graphsArg)
const ROUNDS = Number(roundsArg)

async function measure(url, options) {
  const tag = Math.random().toString(36).slice(2, 8)
  const space = new TaskSpace('', { func: x => x, add: (a, b) => a + b })
  const [ba, bb] = [`a${tag}`, `b${tag}`].map(name => {
    const b = getBroker(url, name, options)
    b.expose(space)
    return b
  })
  const pools = [ba, bb].map(b => new WorkerPool(b, { concurrency: 50 }))
  await Promise.all(pools.map(p => p.start()))
  const qa = ba.queue()
  const qb = bb.queue()
  const one = async i => {
    const v = await (await qb.add(qa.func(i), 1)).result(60_000)
    if (v !== i + 1) throw new Error(`wrong result ${v}`)
  }
  for (let i = 0; i < 200; i++) await one(i) // warm-up
  const lat = []
  for (let i = 0; i < 500; i++) {
    const t0 = performance.now()
    await one(i)
    lat.push(performance.now() - t0)
  }
  lat.sort((x, y) => x - y)
  let next = 0
  const t0 = performance.now()
  await Promise.all(
    Array.from({ length: 50 }, async () => {
      while (next < GRAPHS) await one(next++)
    }),
  )
  const perSecond = Math.round(GRAPHS / ((performance.now() - t0) / 1000))
  await Promise.all(pools.map(p => p.stop({ timeout: 5000 })))
  await Promise.all([ba.close(), bb.close()])
  return { p50: +lat[250].toFixed(3), perSecond }
}

const single = await startRedis()
const cluster = await startCluster(3)
const modes = [
  ['one Redis, one step', single.url, {}],
  ['one Redis, two steps', single.url, { crossSlot: 'split' }],
  ['cluster (3 masters), two steps', cluster.url, {}],
]
const results = new Map(modes.map(([name]) => [name, []]))
try {
  for (let r = 0; r < ROUNDS; r++)
    for (const [name, url, options] of modes) {
      const m = await measure(url, options)
      console.error(name, JSON.stringify(m))
      results.get(name).push(m)
    }
} finally {
  single.stop()
  cluster.stop()
}
const median = xs => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
console.log(`\n${GRAPHS} graphs a -> b, ${ROUNDS} rounds, medians\n`)
console.log('| mode | sequential p50 ms | graphs/s (50 in flight) |')
console.log('| --- | ---: | ---: |')
for (const [name, ms] of results)
  console.log(`| ${name} | ${median(ms.map(m => m.p50))} | ${median(ms.map(m => m.perSecond))} |`)
process.exit(0)
