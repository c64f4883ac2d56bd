/**
 * Deciding what not to run, and what not to run yet, on memory://: the result cache
 * (docs/cache.md) and limits that hold across every worker of a queue (docs/limits.md). CI runs
 * it; it ends by itself in about a second. Swap the URL for redis://127.0.0.1:6379/0 to run it on
 * Redis, where the cache and the limits bind every process of the queue.
 */
import { getBroker, task, TaskSpace, WorkerPool } from '../lib/index.js'

let quoteRuns = 0
let running = 0
let mostAtOnce = 0
export const api = new TaskSpace('api', {
  async quote(symbol: string) {
    quoteRuns++
    await new Promise(r => setTimeout(r, 20))
    return symbol.length * 100
  },
  async fragile(n: number) {
    running++
    mostAtOnce = Math.max(mostAtOnce, running)
    await new Promise(r => setTimeout(r, 30))
    running--
    return n
  },
  echo: (n: number) => n,
})

const broker = getBroker('memory://', 'api').expose(api)
const q = broker.queue<typeof api>()
const pool = new WorkerPool(broker, { concurrency: 8 })
await pool.start()

// --- the result cache: the same call within its TTL reuses the result ---
const first = await task(q.api.quote, { cache: true })('ACME') // runs
console.log('first:', await first.result(5_000), 'cached:', first.cached) // 400 false
const again = await task(q.api.quote, { cache: { ttl: 60_000 } })('ACME') // no worker involved
console.log('again:', await again.result(5_000), 'cached:', again.cached) // 400 true
// Single flight: identical calls made at once run the function once.
const burst = await Promise.all(
  Array.from({ length: 10 }, () => task(q.api.quote, { cache: true })('OTHER')),
)
await Promise.all(burst.map(d => d.result(5_000)))
console.log('runs of quote for 12 calls:', quoteRuns, 'entries:', await broker.cache.size()) // 2 2
console.log('invalidated:', await broker.cache.invalidate(q.api.quote, 'ACME')) // true
console.log('cleared:', await broker.cache.clear()) // 1

// --- limits: at most 2 fragile tasks at once across every worker, 20 starts a second ---
await broker.limit('api.fragile', { concurrency: 2, rate: { max: 20, per: 1_000 } })
console.log('limits:', JSON.stringify(await broker.limits()))
const fragile = await Promise.all(Array.from({ length: 6 }, (_, i) => q.api.fragile(i)))
// Other tasks of the queue do not wait behind the limited ones.
const quick = await q.api.echo(7)
console.log('an unlimited task meanwhile:', await quick.result(5_000))
await Promise.all(fragile.map(d => d.result(5_000)))
console.log('most fragile tasks at once:', mostAtOnce) // 2
await broker.limit('api.fragile', null) // removes it

await pool.stop({ timeout: 5_000 })
await broker.close()
