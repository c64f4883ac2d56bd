/**
 * npm run demo — producers, a worker pool and a graph of deferred calls on the embedded memory://
 * backend. Needs nothing installed. Prints progress while it runs, then the results and the
 * failure as a user would read them.
 */
import { getBroker, TaskSpace, TaskFailure, WorkerPool, task, type Deferred } from '../lib/index.js'

const math = new TaskSpace('math', {
  add: async (a: number, b: number) => {
    await new Promise(r => setTimeout(r, Math.random() * 4))
    return a + b
  },
  sum: (xs: number[]) => xs.reduce((s, x) => s + x, 0),
  mean: (xs: number[]) => xs.reduce((s, x) => s + x, 0) / xs.length,
  report: (xs: unknown[]) => xs.map(x => (x instanceof Error ? `failed: ${x.message}` : x)),
  inverse: (x: number) => {
    if (x === 0) throw new RangeError('cannot invert zero')
    return 1 / x
  },
})

const url = 'memory://demo'
const broker = getBroker(url, 'default').expose(math)
const pool = new WorkerPool(broker, { concurrency: 16 })
let finished = 0
pool.on('task:end', () => finished++)
await pool.start()

const q = broker.queue<typeof math>()
const started = Date.now()
const ticker = setInterval(() => process.stdout.write(`\r  ${finished} tasks finished…`), 50)

// 1. Three producers send 300 independent calls.
const producers = [0, 1, 2].map(async p => {
  const calls: Promise<Deferred<number>>[] = []
  for (let i = 0; i < 100; i++) calls.push(q.math.add(p * 100, i))
  return Promise.all(calls)
})
const sent = (await Promise.all(producers)).flat()

// 2. A fan-out / fan-in graph: every result feeds two sums, whose results feed one mean.
const evens = q.math.sum(sent.filter((_, i) => i % 2 === 0))
const odds = q.math.sum(sent.filter((_, i) => i % 2 === 1))
const all = q.math.sum(sent)
const mean = await q.math.mean([evens, odds])

// 3. A failing branch: inverse(0) throws, and the failure cascades into its dependent.
const zero = await q.math.inverse(0)
const cascaded = await q.math.add(zero, 1)
const tolerant = await task(q.math.report, { onError: 'pass' })([q.math.inverse(4), zero])

const values = await Promise.all(sent.map(d => d.result(10_000)))
const total = await (await all).result(10_000)
const m = await mean.result(10_000)
clearInterval(ticker)
process.stdout.write(`\r  ${finished} tasks finished in ${Date.now() - started} ms      \n\n`)

console.log(
  `300 calls of math.add → first ${values.slice(0, 4).join(', ')} … last ${values.at(-1)}`,
)
console.log(`sum of all results         = ${total}`)
console.log(`mean(sum(evens), sum(odds)) = ${m}`)
for (const [label, d] of [
  ['math.inverse(0)', zero],
  ['math.add(inverse(0), 1)', cascaded],
] as const) {
  try {
    await d.result(10_000)
  } catch (err) {
    if (!(err instanceof TaskFailure)) throw err
    console.log(`${label.padEnd(27)} failed: ${err.message}`)
  }
}
console.log(`report([inverse(4), inverse(0)]) with onError 'pass':`)
for (const line of await tolerant.result(10_000)) console.log(`  - ${String(line)}`)

await pool.stop({ timeout: 5_000 })
await broker.close()
