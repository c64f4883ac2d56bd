import { expect } from 'chai'
import { Redis } from 'ioredis'
import {
  getBroker,
  task,
  TaskExpired,
  WorkerPool,
  type Broker,
  type Deferred,
} from '../../lib/index.js'
import { silentProxy } from '../helpers/chaos-proxy.js'
import { redisUrl, startRedis } from '../helpers/redis-server.js'
import { latch, uniqueQueue } from '../helpers/util.js'

/** A worker pool on its own backend (its own connections, as another process would have). */
function worker(
  url: string,
  queue: string,
  watchdog = { blockMs: 500, pingMs: 200, marginMs: 300 },
) {
  const broker = getBroker(url, queue, { watchdog })
  const runs = new Map<string, number>()
  broker.expose(async function work(id: string, ms: number) {
    runs.set(id, (runs.get(id) ?? 0) + 1)
    await new Promise(r => setTimeout(r, ms))
    return id
  })
  const pool = new WorkerPool(broker, { concurrency: 8, sweepInterval: 100, blockTimeout: 500 })
  return { broker, pool, runs }
}

let batch = 0

/** A sent call and the value it must return (its own `b<batch>-<i>`). */
type Sent = [Deferred<string>, string]

/** Enqueues `n` calls. */
async function send(broker: Broker, n: number, attempts: number, ms = 2): Promise<Sent[]> {
  const prefix = `b${batch++}-`
  const f = task(broker.queue().work, { attempts, heartrate: 100, resultTimeout: 60_000 })
  const out: Sent[] = []
  for (let i = 0; i < n; i += 50) {
    const ids = Array.from({ length: Math.min(50, n - i) }, (_, k) => `${prefix}${i + k}`)
    const ds = await Promise.all(ids.map(id => f(id, ms)))
    ds.forEach((d, k) => out.push([d, ids[k]!]))
  }
  return out
}

/** Every Deferred settles; counts by outcome. A wrong value fails the test. */
async function settle(sent: Sent[], ms = 30_000) {
  const c = { completed: 0, expired: 0 }
  await Promise.all(
    sent.map(async ([d, id]) => {
      try {
        expect(await d.result(ms)).to.equal(id)
        c.completed++
      } catch (err) {
        if (err instanceof TaskExpired) c.expired++
        else throw err
      }
    }),
  )
  return c
}

describe('chaos: connection faults', function () {
  this.timeout(120_000)

  it('a half-open connection: the worker notices within its watchdog and goes on', async () => {
    const url = await redisUrl()
    const proxy = await silentProxy(url)
    const queue = uniqueQueue('halfopen')
    const w = worker(proxy.url, queue)
    const client = getBroker(url, queue)
    try {
      await w.pool.start()
      const first = await send(client, 200, 3)
      expect((await settle(first)).completed).to.equal(200)
      proxy.freeze() // every socket of the worker goes silent, none closes
      const frozenAt = Date.now()
      const after = await send(client, 200, 3)
      const c = await settle(after)
      expect(c.completed).to.equal(200)
      // PING every 200 ms, 300 ms to answer, then a reconnect: well under two seconds.
      console.log(
        `      half-open: recovered and finished 200 tasks ${Date.now() - frozenAt} ms after the freeze`,
      )
    } finally {
      await w.pool.stop({ timeout: 1000 })
      await w.broker.close()
      await client.close()
      proxy.close()
    }
  })

  it('CLIENT KILL of every worker and producer connection mid-run: nothing lost, one result each', async () => {
    const url = await redisUrl()
    const admin = new Redis(url)
    const queue = uniqueQueue('kill')
    const w = worker(url, queue)
    const client = getBroker(url, queue, { watchdog: {} })
    try {
      await w.pool.start()
      const ds = await send(client, 600, 3, 5)
      const started = latch()
      w.pool.once('task:end', () => started.resolve())
      await started.promise
      const killed = await admin.client('KILL', 'TYPE', 'normal', 'SKIPME', 'yes')
      const more = await send(client, 200, 3, 1)
      expect((await settle(ds)).completed).to.equal(600)
      expect((await settle(more)).completed).to.equal(200)
      console.log(`      CLIENT KILL: ${killed} connections killed; 800/800 tasks completed`)
    } finally {
      admin.disconnect()
      await w.pool.stop({ timeout: 1000 })
      await w.broker.close()
      await client.close()
    }
  })

  it('CLIENT PAUSE longer than a lease: every task completes, with one result each', async () => {
    const url = await redisUrl()
    const admin = new Redis(url)
    const queue = uniqueQueue('pause')
    const w = worker(url, queue, { blockMs: 500, pingMs: 5000, marginMs: 2000 })
    const client = getBroker(url, queue)
    try {
      await w.pool.start()
      const retried = await send(client, 300, 3, 20)
      const started = latch()
      w.pool.once('task:end', () => started.resolve())
      await started.promise
      await admin.client('PAUSE', '1500', 'ALL') // lease is 2 × 100 + 1000 ms
      const c = await settle(retried)
      expect(c.completed).to.equal(300)
      const repeats = [...w.runs.values()].filter(n => n > 1).length
      console.log(
        `      CLIENT PAUSE 1500 ms: 300/300 completed, ${repeats} ran twice (lease lapsed mid-run)`,
      )
    } finally {
      await admin.client('UNPAUSE').catch(() => undefined)
      admin.disconnect()
      await w.pool.stop({ timeout: 1000 })
      await w.broker.close()
      await client.close()
    }
  })

  it('a Redis restart (appendonly, fsync always) mid-run: both sides reconnect; nothing enqueued is lost', async () => {
    const server = await startRedis({ appendonly: true })
    const queue = uniqueQueue('restart')
    const w = worker(server.url, queue)
    const client = getBroker(server.url, queue)
    try {
      const ds = await send(client, 500, 3, 5)
      await w.pool.start()
      const started = latch()
      w.pool.once('task:end', () => started.resolve())
      await started.promise
      await server.restart()
      const more = await send(client, 100, 3, 1)
      expect((await settle(ds)).completed).to.equal(500)
      expect((await settle(more)).completed).to.equal(100)
      console.log('      restart: 600/600 tasks completed across a Redis restart')
    } finally {
      await w.pool.stop({ timeout: 1000 })
      await w.broker.close()
      await client.close()
      await server.stop()
    }
  })
})
