/**
 * The task system across processes: `worq worker` processes run the tasks, this process enqueues,
 * limits, watches progress and events, and cancels — all through one Redis.
 */
import { expect } from 'chai'
import { Redis } from 'ioredis'
import { getBroker, task, TaskCancelled, type Broker, type Deferred } from '../../lib/index.js'
import { killAll, worq, type CliProcess } from '../helpers/cli.js'
import { redisUrl } from '../helpers/redis-server.js'
import { uniqueQueue, until } from '../helpers/util.js'
import type { ev, lim, prog } from '../fixtures/shaping-tasks.js'

const TASKS = new URL('../fixtures/shaping-tasks.ts', import.meta.url).pathname

describe('redis: the task system across processes', function () {
  let url: string
  let side: Redis
  let broker: Broker | undefined
  before(async () => {
    url = await redisUrl()
    side = new Redis(url)
    process.env.WORQ_TEST_SIDE_URL = url
  })
  after(() => side.disconnect())
  afterEach(async () => {
    killAll()
    await broker?.close()
    broker = undefined
  })

  function workers(queue: string, n: number, extra: string[] = []): Promise<CliProcess[]> {
    const ws = Array.from({ length: n }, () =>
      worq(['worker', url, '--tasks', TASKS, '--queue', queue, '--concurrency', '8', ...extra]),
    )
    return Promise.all(ws.map(w => w.line(/worker:start/).then(() => w)))
  }

  it('a concurrency limit of 2 holds across two worker processes of 8 slots, while 200 fast tasks finish meanwhile', async () => {
    const queue = uniqueQueue('xlimit')
    broker = getBroker(url, queue)
    await broker.limit('lim.slow', { concurrency: 2 })
    await workers(queue, 2)
    const q = broker.queue<typeof lim>()
    const key = `test:{${queue}}:slow`
    const slow = await Promise.all(Array.from({ length: 8 }, () => q.lim.slow(key, 150)))
    const fast = await Promise.all(Array.from({ length: 200 }, (_, i) => q.lim.fast(i)))
    await Promise.all(fast.map(d => d.result(10_000)))
    const slowDone = await Promise.all(slow.map(d => d.status()))
    // The fast ones did not wait for the slow ones: most slow tasks still wait for a slot.
    expect(slowDone.filter(s => s === 'completed').length).to.be.below(8)
    await Promise.all(slow.map(d => d.result(10_000)))
    expect(await side.get(`${key}:most`)).to.equal('2')
    const ran = (await Promise.all([...slow, ...fast].map(d => d.info()))).map(i => i!.workerId)
    expect(new Set(ran).size).to.equal(2) // both processes took tasks
    await side.del(`${key}:now`, `${key}:most`)
  })

  it('a rate limit of 5 per second holds over 20 starts across two processes', async () => {
    const queue = uniqueQueue('xrate')
    broker = getBroker(url, queue)
    await broker.limit('lim.fast', { rate: { max: 5, per: 1000 } })
    await workers(queue, 2)
    const q = broker.queue<typeof lim>()
    const ds = await Promise.all(Array.from({ length: 20 }, (_, i) => q.lim.fast(i)))
    await Promise.all(ds.map(d => d.result(15_000)))
    const starts = (await Promise.all(ds.map(d => d.info())))
      .map(i => i!.startedAt!.getTime())
      .sort((a, b) => a - b)
    for (let i = 0; i + 5 < starts.length; i++)
      expect(starts[i + 5]! - starts[i]!, `starts ${i}..${i + 5}`).to.be.at.least(1000)
  })

  it('SIGKILL of a worker holding a slot frees it within the recovery latency', async () => {
    const queue = uniqueQueue('xkill')
    broker = getBroker(url, queue)
    await broker.limit('lim.hold', { concurrency: 1 })
    const key = `test:{${queue}}:held`
    const [a] = await workers(queue, 1, ['--sweep-interval', '200'])
    const q = broker.queue<typeof lim>()
    const first = await task(q.lim.hold, { heartrate: 200 })(key)
    await until(async () => (await side.llen(key)) === 1, 10_000, 'the first to start')
    const [b] = await workers(queue, 1, ['--sweep-interval', '200'])
    const second = await task(q.lim.hold, { heartrate: 200 })(key)
    await new Promise(r => setTimeout(r, 300)) // the limit holds the second meanwhile
    expect(await side.llen(key)).to.equal(1)
    const killed = Date.now()
    a!.proc.kill('SIGKILL')
    await until(async () => (await side.llen(key)) === 2, 10_000, 'the second to start')
    const freedIn = Date.now() - killed
    // Recovery: the lease (2 × 200 + 1000 ms) plus a sweep interval (200 ms), and some slack.
    expect(freedIn).to.be.below(2 * 200 + 1000 + 200 + 1500)
    expect((await side.lindex(key, 1))!.startsWith(`${b!.proc.pid}:`)).to.equal(true)
    expect(await first.result(10_000).catch((e: unknown) => (e as Error).name)).to.equal(
      'TaskExpired',
    )
    await second.cancel()
    await side.del(key)
  })

  it('progress reaches a caller in another process, in order; the last value is in info()', async () => {
    const queue = uniqueQueue('xprog')
    broker = getBroker(url, queue)
    await workers(queue, 1)
    const d = await broker.queue<typeof prog>().prog.steps(40)
    const seen: number[] = []
    d.onProgress(v => seen.push((v as { done: number }).done))
    expect(await d.result(10_000)).to.equal(40)
    await until(() => seen.at(-1) === 40, 5000, 'the last progress')
    expect([...seen].sort((x, y) => x - y)).to.deep.equal(seen)
    expect(new Set(seen).size).to.equal(seen.length)
    expect((await d.info())!.progress).to.deep.equal({ done: 40, total: 40 })
  })

  it('a listener sees every event of 1 000 tasks run elsewhere, with retries, failures, cancels and expiries, in per-task order', async function () {
    this.timeout(120_000)
    const queue = uniqueQueue('xevents')
    broker = getBroker(url, queue)
    const events = broker.events()
    const seen = new Map<string, string[]>()
    let count = 0
    events.on('*', e => {
      count++
      const list = seen.get(e.id) ?? []
      list.push(e.type)
      seen.set(e.id, list)
    })
    await events.ready
    const q = broker.queue<typeof ev>()
    const kinds = ['ok', 'flaky', 'bad', 'slow', 'cancel', 'expire'] as const
    const made: Array<{ kind: (typeof kinds)[number]; d: Deferred<string> }> = []
    // The "expire" ones first: a worker that dies at once (it never renews) takes them all.
    const doomed = Math.ceil(1000 / kinds.length)
    for (let i = 0; i < doomed; i++)
      made.push({ kind: 'expire', d: (await task(q.ev.run, { heartrate: 20 })('expire'))! })
    const { backend } = await broker.backend()
    expect((await backend.exchange(queue, 'doomed', [], doomed)).reserved).to.have.length(doomed)
    for (let i = doomed; i < 1000; i++) {
      const kind = kinds[i % (kinds.length - 1)]!
      if (kind === 'cancel')
        made.push({ kind, d: (await task(q.ev.run, { delay: 60_000 })(kind))! })
      else if (kind === 'flaky')
        made.push({ kind, d: (await task(q.ev.run, { attempts: 2 })(kind))! })
      else made.push({ kind, d: await q.ev.run(kind) })
    }
    for (const m of made.filter(x => x.kind === 'cancel')) await m.d.cancel()
    await workers(queue, 2, ['--sweep-interval', '100'])
    await Promise.all(made.map(m => m.d.wait(20_000)))
    const expected: Record<string, string[]> = {
      ok: ['enqueued', 'started', 'completed'],
      slow: ['enqueued', 'started', 'completed'],
      flaky: ['enqueued', 'started', 'retrying', 'started', 'completed'],
      bad: ['enqueued', 'started', 'failed'],
      cancel: ['enqueued', 'cancelled'],
      expire: ['enqueued', 'started', 'expired'],
    }
    const total = made.reduce((s, m) => s + expected[m.kind]!.length, 0)
    await until(() => count >= total, 10_000, `${total} events`)
    for (const m of made)
      expect(seen.get(m.d.id), `${m.kind} ${m.d.id}`).to.deep.equal(expected[m.kind])
    expect(count).to.equal(total)
    await events.close()
    const cancelled = made.find(m => m.kind === 'cancel')!
    expect(await cancelled.d.result(100).catch((e: unknown) => e)).to.be.instanceOf(TaskCancelled)
  })

  it('a task running in a child process is told of its cancel; one that ignores it is killed after --kill-grace', async () => {
    const queue = uniqueQueue('xcancel')
    broker = getBroker(url, queue)
    const key = `test:{${queue}}:child`
    const [w] = await workers(queue, 1, ['--processes', '1', '--kill-grace', '300'])
    const q = broker.queue<typeof lim>()
    const polite = await q.lim.hold(key)
    await until(async () => (await side.llen(key)) === 1, 10_000, 'the polite task to start')
    expect(await polite.cancel()).to.equal(true)
    expect(await polite.result(5000).catch((e: unknown) => e)).to.be.instanceOf(TaskCancelled)
    const stubborn = await q.lim.stubborn(key)
    await until(async () => (await side.llen(key)) === 2, 10_000, 'the stubborn task to start')
    const childPid = Number(await side.lindex(key, 1))
    expect(await stubborn.cancel()).to.equal(true)
    await w!.line(new RegExp(`child:exit pid ${childPid} timeout`), 10_000)
    await side.del(key)
  })
})
