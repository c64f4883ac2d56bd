// A lone call over plain commands: a prototype of a protocol without scripts on the call's path,
// to bound what one would buy (docs/redis.md, "A lone call over plain commands"). Not worq: it
// keeps a record, an event, a count and a listing entry per call, reserves by moving the call to
// the worker's own list, and finishes only while the call is still there (the fence), but it has
// no priorities, delays, limits, pause, cache, leases with deadlines or dependents.
//
// - the call: one MULTI of SET (the record), LPUSH (the line, the record inline), XADD (the
//   event), HINCRBY (the count) and RPUSH (the listing's second);
// - the worker: BLMOVE from the line to its own list (the reservation and the wake in one reply);
// - the finish: one small script (LREM from the worker's list, which must remove it; then SET of
//   the outcome, PUBLISH to the caller, XADD, HINCRBY);
// - the caller: its result from its subscription.
//
// Prints p50 and p99 of `n` lone calls after `warmup`, and Redis's command time a call (INFO
// commandstats: the MULTI's and the script's, their commands counted once).
//
//   REDIS_URL=redis://127.0.0.1:6390/0 node bench/lone-plain.js [n=5000] [warmup=2000]
//
// (a Redis 6.2+ you may flush: it is flushed first)
import { Redis } from 'ioredis'
import { commandStats } from './redis.js'

const n = Number(process.argv[2] ?? 5000)
const warmup = Number(process.argv[3] ?? 2000)
const url = process.env.REDIS_URL
const [caller, subscriber, blocking, worker] = [1, 2, 3, 4].map(() => new Redis(url))
const Q = 'worq-plain:{bench}:'
const SEP = '\u001f'

worker.defineCommand('finish', {
  numberOfKeys: 5,
  lua: `if redis.call('LREM', KEYS[1], 1, ARGV[1]) == 1 then
  redis.call('SET', KEYS[2], ARGV[2], 'PX', 3600000)
  redis.call('PUBLISH', KEYS[3], ARGV[3] .. '|' .. ARGV[2])
  redis.call('XADD', KEYS[4], '*', 'f', 'completed|' .. ARGV[3])
  redis.call('HINCRBY', KEYS[5], 'completed', 1)
  return 1
end
return 0`,
})

await caller.flushall()
await caller.config('RESETSTAT')

/** Callers waiting for their result, by call id. */
const waiting = new Map()
await subscriber.subscribe(`${Q}res:me`)
subscriber.on('message', (_channel, message) => {
  const bar = message.indexOf('|')
  const id = message.slice(0, bar)
  const settle = waiting.get(id)
  waiting.delete(id)
  settle?.(JSON.parse(message.slice(bar + 1)))
})

let seq = 0
async function call(a, b) {
  const id = `t${seq++}`
  const record = JSON.stringify({ id, name: 'add', args: [a, b], caller: 'me' })
  const result = new Promise(resolve => waiting.set(id, resolve))
  await caller
    .multi()
    .set(`${Q}r:${id}`, record)
    .lpush(`${Q}wait`, `${id}${SEP}${record}`)
    .xadd(`${Q}ev`, '*', 'f', `enqueued|${id}`)
    .hincrby(`${Q}m`, 'enqueued', 1)
    .rpush(`${Q}ls:${Math.floor(Date.now() / 1000)}`, id)
    .exec()
  return result
}

let running = true
async function work() {
  const mine = `${Q}proc:w1`
  while (running) {
    const item = await blocking.blmove(`${Q}wait`, mine, 'RIGHT', 'LEFT', 1)
    if (!item) continue
    const id = item.slice(0, item.indexOf(SEP))
    const task = JSON.parse(item.slice(item.indexOf(SEP) + 1))
    const value = JSON.stringify(task.args[0] + task.args[1])
    await worker.finish(
      mine,
      `${Q}o:${id}`,
      `${Q}res:${task.caller}`,
      `${Q}ev`,
      `${Q}m`,
      item,
      value,
      id,
    )
  }
}

const working = work()
for (let i = 0; i < warmup; i++) await call(i, 1)
const before = commandStats(await caller.info('commandstats'))
const latencies = []
for (let i = 0; i < n; i++) {
  const start = performance.now()
  const value = await call(i, 1)
  latencies.push(performance.now() - start)
  if (value !== i + 1) throw new Error(`wrong result ${value} for ${i} + 1`)
}
const after = commandStats(await caller.info('commandstats'))
running = false
await working
latencies.sort((x, y) => x - y)
// The transaction's and the script's own time hold their commands' time: count those two only.
const usec = ['exec', 'evalsha', 'eval', 'blmove'].reduce(
  (sum, k) => sum + ((after.get(k)?.usec ?? 0) - (before.get(k)?.usec ?? 0)),
  0,
)
console.log(
  `plain commands, ${n} lone calls after ${warmup}: p50 ${latencies[Math.floor(n * 0.5)].toFixed(3)} ms, ` +
    `p99 ${latencies[Math.floor(n * 0.99)].toFixed(3)} ms, Redis command time ${(usec / n).toFixed(1)} µs a call`,
)
for (const c of [caller, subscriber, blocking, worker]) c.disconnect()
