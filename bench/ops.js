// Redis server time of the two hot operations, on the built package: an enqueue of a batch handed
// over to a parked worker, and the exchange that finishes that batch. Server time is read from
// INFO commandstats (the FCALL or EVALSHA total) around each call, so the Lua's own commands are
// included and nothing like SLOWLOG inflates them. The function library and the EVALSHA scripts
// are measured in alternating rounds, as single runs on a shared machine drift.
// REDIS_URL=redis://127.0.0.1:6379/0 node bench/ops.js [batch=50] [rounds=300]
// (a Redis you may write to)
import { Redis } from 'ioredis'
import { RedisBackend } from '../dist/backends/redis/redis.js'
import { storedBackoff } from '../dist/backends/backend.js'
import { commandStats } from './redis.js'

const url = process.env.REDIS_URL
const batch = Number(process.argv[2] ?? 50)
const rounds = Number(process.argv[3] ?? 300)
const admin = new Redis(url)
let n = 0
const task = () => ({
  id: `ops-${(n++).toString(36).padStart(11, '0')}`,
  name: 'add',
  payload: '{"json":[12345,1]}',
  deps: [],
  onError: 'fail',
  ignoreResult: false,
  resultTimeout: 3_600_000,
  heartrate: 30_000,
  attempts: 1,
  backoff: storedBackoff(undefined),
  runAt: 0,
  timeout: 0,
})
const median = xs => [...xs].sort((a, b) => a - b)[xs.length >> 1]

/** One way of sending the Lua, on a queue of its own. */
function subject(functions) {
  const backend = new RedisBackend(url, { maxPayloadBytes: 1 << 20, functions })
  const queue = `ops-${functions ? 'fn' : 'script'}-${Date.now()}`
  const command = functions ? 'fcall' : 'evalsha'
  const serverUs = async () =>
    commandStats(await admin.info('commandstats')).get(command)?.usec ?? 0
  const enqueue = []
  const exchange = []
  return {
    name: functions ? 'functions' : 'scripts',
    enqueue,
    exchange,
    async round(record) {
      await backend.exchange(queue, 'w', [], batch, { ms: 60_000, slots: batch }) // park
      const t0 = await serverUs()
      await backend.enqueue(queue, Array.from({ length: batch }, task))
      const t1 = await serverUs()
      const handed = await backend.waitForWork(queue, 'w', 5000)
      if (handed.length !== batch) throw new Error(`handed over ${handed.length} of ${batch}`)
      const t2 = await serverUs()
      const done = handed.map(t => ({ ...t, outcome: 'c{"json":12346}' }))
      await backend.exchange(queue, 'w', done, 0)
      const t3 = await serverUs()
      if (record) {
        enqueue.push(t1 - t0)
        exchange.push(t3 - t2)
      }
    },
    async close() {
      await backend.purge(queue)
      await backend.unregisterWorker(queue, 'w')
      await backend.close()
    },
  }
}

const subjects = [subject(true), subject(false)]
for (let i = 0; i < rounds + 20; i++) for (const s of subjects) await s.round(i >= 20)
console.log(`batches of ${batch}, ${rounds} alternating rounds, median µs of server time:`)
for (const s of subjects) {
  const [e, x] = [median(s.enqueue), median(s.exchange)]
  console.log(
    `  ${s.name.padEnd(9)} enqueue with handover ${e} (${(e / batch).toFixed(1)} per task), ` +
      `exchange finishing them ${x} (${(x / batch).toFixed(1)} per task)`,
  )
}
for (const s of subjects) await s.close()
await admin.quit()
