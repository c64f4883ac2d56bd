/**
 * Replies lost after their command ran (a proxy drops them; ioredis resends the command): an
 * exchange that ended a task, put it back for a retry, ended an ignoreResult task or made a
 * reservation, and an enqueue whose task already ran. No outcome may be lost, no task may run
 * again, and no lease may be reported lost.
 */
import { expect } from 'chai'
import { getBroker, task, WorkerPool, type Broker, type TaskOptions } from '../../lib/index.js'
import { HEARTRATE, SWEEP, worker } from '../helpers/chaos-worker.js'
import { silentProxy } from '../helpers/chaos-proxy.js'
import { redisUrl } from '../helpers/redis-server.js'
import { histogramCounts } from '../helpers/histograms.js'
import { latch, uniqueQueue } from '../helpers/util.js'

/**
 * One broker through `url` that both enqueues and works, so its scripts return this process's
 * outcomes in their replies; its pool runs one task at a time, and the lease:lost reports it makes.
 */
function selfWorker(url: string, queue: string, expose: (broker: Broker) => void) {
  const broker = getBroker(url, queue, { watchdog: { blockMs: 500, pingMs: 200, marginMs: 300 } })
  expose(broker)
  const pool = new WorkerPool(broker, { concurrency: 1, prefetch: 0, sweepInterval: SWEEP })
  const lost: string[] = []
  pool.on('lease:lost', e => lost.push(e.id))
  return { broker, pool, lost }
}

/**
 * A self-working pool runs the task `swallow-<queue>` (enqueued with `options`; its first run
 * throws when `failFirst`), and the reply of the exchange that ends it, or puts it back for a
 * retry, is lost: ioredis resends that exchange. Resolves, once the task's result (when kept) and
 * one more call (whose exchange follows the resent one's reply) are in, with how often the task
 * ran, the leases the pool reported lost, the tasks still waiting, and the runs and waits the
 * histograms counted (the task's runs and the one more call's).
 */
async function loseReplyOfEnd(tag: string, options: TaskOptions<any>, failFirst: boolean) {
  const url = await redisUrl()
  const proxy = await silentProxy(url)
  const queue = uniqueQueue(tag)
  // The id is the marker: the exchange that ends or retries the task carries it (no renewal does
  // within the default heartrate).
  const marker = `swallow-${queue}`
  let runs = 0
  const { broker, pool, lost } = selfWorker(proxy.url, queue, b =>
    b.expose(async function work(id: string) {
      if (id === marker) runs++
      await new Promise(r => setTimeout(r, 300))
      if (id === marker && runs === 1 && failFirst) throw new Error('first attempt fails')
      return id
    }),
  )
  try {
    await pool.start()
    const started = latch()
    pool.once('task:start', () => started.resolve())
    const d = await task(broker.queue().work, { ...options, id: marker })(marker)
    await started.promise
    // The exchange reaches Redis; its reply is dropped, ioredis resends.
    await proxy.swallowRepliesAfter(marker)
    if (d) expect(await d.result(10_000)).to.equal(marker)
    const after = await broker.queue().work('after')
    expect(await after!.result(10_000)).to.equal('after')
    return { runs, lost, waiting: await broker.size(), counted: await histogramCounts(broker) }
  } finally {
    await pool.stop({ timeout: 1000 })
    await broker.close()
    proxy.close()
  }
}

describe('chaos: lost replies', function () {
  this.timeout(120_000)

  it('a reply lost after exchange ran, in a process that both enqueues and works: the outcome it carried still reaches the waiter', async () => {
    const url = await redisUrl()
    const proxy = await silentProxy(url)
    const queue = uniqueQueue('lostown')
    const { broker, pool, lost } = selfWorker(proxy.url, queue, b =>
      b.expose(async function work(id: string, ms: number) {
        await new Promise(r => setTimeout(r, ms))
        return id
      }),
    )
    try {
      await pool.start()
      const warm = await task(broker.queue().work, { heartrate: HEARTRATE })('warm', 0)
      expect(await warm.result(10_000)).to.equal('warm') // the subscriber is up
      const marker = `swallow-${queue}`
      const started = latch()
      pool.once('task:start', () => started.resolve())
      const a = await task(broker.queue().work, { heartrate: HEARTRATE })(marker, 300)
      await started.promise
      // The exchange carrying a's result reaches Redis, which stores it and returns it in the
      // reply (no PUBLISH: the caller enqueued it); the reply is dropped, ioredis resends.
      const swallowed = proxy.swallowRepliesAfter(marker)
      await swallowed
      const t0 = Date.now()
      const got = await a.result(5_000).then(
        v => v,
        (e: Error) => `${e.name}: ${e.message.slice(0, 80)}`,
      )
      // The resent exchange finds a's outcome stored by its own first run: no lease was lost. The
      // pool's next exchange (finishing one more task) comes after the resent one's reply.
      const after = await task(broker.queue().work, { heartrate: HEARTRATE })('after', 0)
      expect(await after.result(10_000)).to.equal('after')
      console.log(
        `      lost reply carrying an own outcome: a → ${got} after ${Date.now() - t0} ms; lease:lost for ${lost}`,
      )
      expect(got).to.equal(marker)
      expect(lost).to.deep.equal([])
    } finally {
      await pool.stop({ timeout: 1000 })
      await broker.close()
      proxy.close()
    }
  })

  it('a reply lost after an exchange that put a task back for a retry: the resend is not reported as a lost lease', async () => {
    const r = await loseReplyOfEnd('lostretry', { attempts: 2, backoff: 10 }, true)
    console.log(`      lost reply of a retry: ${r.runs} runs; lease:lost for ${r.lost}`)
    expect(r.runs).to.equal(2)
    expect(r.lost).to.deep.equal([])
  })

  it('a reply lost after an exchange that ended an ignoreResult task: the resend is not reported as a lost lease', async () => {
    const r = await loseReplyOfEnd('lostignored', { ignoreResult: true }, false)
    console.log(`      lost reply of an ignoreResult end: ${r.runs} runs; lease:lost for ${r.lost}`)
    expect(r.runs).to.equal(1)
    expect(r.lost).to.deep.equal([])
    expect(r.waiting).to.equal(0)
  })

  for (const [what, options, failFirst] of [
    ['ended a run', {}, false],
    ['put a run back for a retry', { attempts: 2, backoff: 10 }, true],
    [
      'ended an ignoreResult task (the resend is answered from its memo)',
      { ignoreResult: true },
      false,
    ],
  ] as const)
    it(`a reply lost after an exchange that ${what}: the resend does not count the run's times again`, async () => {
      const r = await loseReplyOfEnd('losttimes', options, failFirst)
      // The task's runs and the one more call's, each once.
      expect(r.counted).to.deep.equal({ runs: r.runs + 1, waits: r.runs + 1 })
    })

  it('a reply lost after exchange ran (reservation made, worker never told): the task still runs, no false lease:lost', async () => {
    const url = await redisUrl()
    const proxy = await silentProxy(url)
    const queue = uniqueQueue('lostreply')
    // One slot, no prefetch: the exchange that finishes `a` is the one that reserves `b`.
    const w = worker(
      proxy.url,
      queue,
      { blockMs: 500, pingMs: 200, marginMs: 300 },
      {
        concurrency: 1,
        prefetch: 0,
      },
    )
    const client = getBroker(url, queue)
    try {
      await w.pool.start()
      const f = (id: string) =>
        task(client.queue().work, { heartrate: HEARTRATE, resultTimeout: 60_000 })(id, 0)
      const marker = `swallow-${queue}`
      const started = latch()
      w.pool.once('task:start', () => started.resolve())
      const a = await task(client.queue().work, { heartrate: HEARTRATE })(marker, 300)
      await started.promise
      const b = await f('b')
      // The exchange carrying a's result (its value is the marker) reaches Redis, which stores
      // it and reserves b; the reply is dropped. The watchdog reconnects and ioredis resends it.
      const swallowed = proxy.swallowRepliesAfter(marker)
      expect(await a.result(10_000)).to.equal(marker)
      await swallowed
      const outcome = await b.result(10_000).then(
        v => v,
        (e: Error) => `${e.name}: ${e.message}`,
      )
      console.log(`      lost exchange reply: b → ${outcome}; lease:lost for ${w.lost}`)
      expect(outcome).to.equal('b')
      expect(w.lost).to.deep.equal([])
    } finally {
      await w.pool.stop({ timeout: 1000 })
      await w.broker.close()
      await client.close()
      proxy.close()
    }
  })

  it('an enqueue reply lost after the task already ran: the resent enqueue does not run it again', async () => {
    const url = await redisUrl()
    const proxy = await silentProxy(url)
    const queue = uniqueQueue('lostenq')
    const w = worker(url, queue)
    // The producer talks through the proxy, on a backend of its own.
    const client = getBroker(proxy.url, queue, {
      watchdog: { blockMs: 500, pingMs: 200, marginMs: 300 },
    })
    try {
      await w.pool.start()
      const warm = await task(client.queue().work, { heartrate: HEARTRATE })('warm', 0)
      expect(await warm.result(10_000)).to.equal('warm') // the subscriber is up
      const marker = `swallow-${queue}`
      // The enqueue reaches Redis and the worker runs the task at once; the reply is dropped.
      // The watchdog reconnects and ioredis resends the enqueue, which finds the task ended.
      const swallowed = proxy.swallowRepliesAfter(marker)
      const a = task(client.queue().work, { heartrate: HEARTRATE, resultTimeout: 60_000 })(
        marker,
        0,
      )
      await swallowed
      const d = await a
      expect(await d.result(10_000)).to.equal(marker)
      // The resend has been answered (the call returned): the task must still be over, not
      // queued or running again.
      const info = await w.broker.backend().then(({ backend }) => backend.inspect(queue))
      console.log(
        `      lost enqueue reply: ran ${w.runs.get(marker)} time(s); then ${info.waiting} waiting, ${info.processing} processing`,
      )
      expect([info.waiting, info.processing]).to.deep.equal([0, 0])
      expect(w.runs.get(marker)).to.equal(1)
    } finally {
      await w.pool.stop({ timeout: 1000 })
      await w.broker.close()
      await client.close()
      proxy.close()
    }
  })
})
