import { expect } from 'chai'
import { getBroker, task, WorkerPool, type TaskContext } from '../../lib/index.js'
import { prometheusMetrics } from '../../lib/metrics/index.js'
import { backends } from '../helpers/backends.js'
import { latch, uniqueQueue } from '../helpers/util.js'
import { promtoolCheck, samples } from '../helpers/promtool.js'

for (const backend of backends) {
  describe(`contract: metrics [${backend.name}]`, () => {
    let url: string
    before(async () => {
      url = await backend.url()
    })

    it('counts what the test did, and percentiles fall within the bucket of the true values', async () => {
      const queue = uniqueQueue('metrics')
      const broker = getBroker(url, queue)
      broker.expose(async function work(this: TaskContext, kind: string, ms: number) {
        await new Promise(r => setTimeout(r, ms))
        if (kind === 'flaky' && this.attempt === 1) throw new Error('again')
        if (kind === 'bad') throw new Error('bad')
        return kind
      })
      try {
        const q = broker.queue()
        const pool = new WorkerPool(broker, { concurrency: 10 })
        await pool.start()
        const ok = await Promise.all(Array.from({ length: 20 }, () => q.work('ok', 40)))
        const flaky = await Promise.all(
          Array.from({ length: 3 }, () => task(q.work, { attempts: 2 })('flaky', 1)),
        )
        const bad = await Promise.all(Array.from({ length: 2 }, () => q.work('bad', 1)))
        const cancelled = await task(q.work, { delay: 60_000 })('never', 0)
        await Promise.all([...ok, ...flaky].map(d => d!.result(5000)))
        await Promise.all(bad.map(d => d.wait(5000)))
        await cancelled!.cancel()
        await pool.stop()
        const m = await broker.metrics({ minutes: 5 })
        const sum = (f: 'completed' | 'failed' | 'retried' | 'expired' | 'cancelled') =>
          m.minutes.reduce((s, x) => s + x[f], 0)
        expect(sum('completed')).to.equal(23)
        expect(sum('failed')).to.equal(2)
        expect(sum('retried')).to.equal(3)
        expect(sum('cancelled')).to.equal(1)
        expect(sum('expired')).to.equal(0)
        expect(m.totals).to.include({
          completed: 23,
          failed: 2,
          retried: 3,
          cancelled: 1,
          expired: 0,
        })
        expect(m.counts).to.deep.equal({ waiting: 0, delayed: 0, pending: 0, processing: 0 })
        // 20 of 28 runs took 40 ms or a little more: p50 lies in the bucket (32, 64] ms.
        expect(m.runTime!.p50).to.be.within(32, 64)
        expect(m.runTime!.p99).to.be.within(32, 128)
        expect(m.waitTime!.p50).to.be.at.least(0)
        expect(m.minutes[0]!.time).to.be.instanceOf(Date)
      } finally {
        await broker.close()
      }
    })

    it('renders Prometheus text that its parser accepts, with counters, gauges and histograms', async () => {
      const queue = uniqueQueue('metrics')
      const other = uniqueQueue('metrics')
      const broker = getBroker(url, queue)
      const second = getBroker(url, other)
      broker.expose(function job(n: number) {
        return n
      })
      try {
        const pool = new WorkerPool(broker)
        await pool.start()
        const ds = await Promise.all([1, 2, 3].map(n => broker.queue().job(n)))
        await Promise.all(ds.map(d => d.result(5000)))
        await second.queue().job(9) // waits: no worker on that queue
        const text = await prometheusMetrics([broker, second])
        await pool.stop()
        // Prometheus's own parser accepts it, and its linter finds nothing.
        expect(promtoolCheck(text)).to.equal('')
        expect(text).to.match(/^# TYPE worq_tasks_total counter$/m)
        expect(text).to.match(/^# TYPE worq_tasks gauge$/m)
        expect(text).to.match(/^# TYPE worq_task_run_seconds histogram$/m)
        const all = samples(text)
        const one = (name: string, labels: Record<string, string>) =>
          all.find(
            x => x.name === name && Object.entries(labels).every(([k, v]) => x.labels[k] === v),
          )?.value
        expect(one('worq_tasks_total', { queue, status: 'completed' })).to.equal(3)
        expect(one('worq_tasks', { queue: other, state: 'waiting' })).to.equal(1)
        expect(one('worq_task_run_seconds_count', { queue })).to.equal(3)
        expect(one('worq_task_run_seconds_bucket', { queue, le: '+Inf' })).to.equal(3)
        expect(one('worq_workers', { queue: other })).to.equal(0)
      } finally {
        await second.purge()
        await second.close()
        await broker.close()
      }
    })

    it('a run cancelled while it runs counts once in the run-time histogram, not twice', async () => {
      const broker = getBroker(url, uniqueQueue('metrics'))
      const started = latch()
      broker.expose(async function hold(this: TaskContext) {
        started.resolve()
        await new Promise(resolve => this.signal.addEventListener('abort', resolve))
      })
      const pool = new WorkerPool(broker)
      try {
        await pool.start()
        const d = await broker.queue().hold()
        await started.promise
        expect(await d.cancel()).to.equal(true)
        await d.wait(5000)
        await pool.stop() // the cancelled run's finish has been sent
        const all = samples(await prometheusMetrics(broker))
        const count = (name: string) => all.find(x => x.name === name)?.value
        expect(count('worq_tasks_total')).to.equal(0) // completed
        expect(all.find(x => x.labels.status === 'cancelled')?.value).to.equal(1)
        expect(count('worq_task_run_seconds_count'), 'runs counted').to.equal(1)
        expect(count('worq_task_wait_seconds_count'), 'waits counted').to.equal(1)
      } finally {
        await broker.close()
      }
    })

    for (const attempts of [1, 2]) {
      const ended = attempts === 1 ? 'expired' : 'put back for a retry'
      it(`a run whose lease the sweep ${ended}, finished late by its worker, counts once in the wait- and run-time histograms`, async () => {
        const queue = uniqueQueue('metrics')
        const broker = getBroker(url, queue)
        try {
          const d = await task(broker.queue().func, { heartrate: 20, attempts, backoff: 60_000 })()
          const { backend: b } = await broker.backend()
          const [mine] = (await b.exchange(queue, 'slow', [], 1)).reserved
          expect(mine!.id).to.equal(d.id)
          await new Promise(r => setTimeout(r, 1100)) // let the lease (2 × 20 + 1000 ms) lapse: time itself is under test
          expect(await b.sweep(queue, 10)).to.equal(1)
          // The worker, alive but late, reports the run it measured: refused as stale.
          const finish = { id: mine!.id, token: mine!.token, outcome: 'c1', runMs: 1100, waitMs: 3 }
          const late = await b.exchange(queue, 'slow', [finish], 0)
          expect(late.stale).to.deep.equal([mine!.id])
          const all = samples(await prometheusMetrics(broker))
          const count = (name: string) => all.find(x => x.name === name)?.value
          const status = (s: string) => all.find(x => x.labels.status === s)?.value
          expect(status(attempts === 1 ? 'expired' : 'retried')).to.equal(1)
          expect(status('completed')).to.equal(0)
          expect(count('worq_task_run_seconds_count'), 'runs counted').to.equal(1)
          expect(count('worq_task_wait_seconds_count'), 'waits counted').to.equal(1)
        } finally {
          await broker.purge()
          await broker.close()
        }
      })
    }

    for (const attempts of [1, 2]) {
      const ended = attempts === 1 ? 'expires' : 'puts back for a retry'
      it(`a dead worker's run that the sweep ${ended} counts once in the wait- and run-time histograms`, async () => {
        const queue = uniqueQueue('metrics')
        const broker = getBroker(url, queue)
        try {
          const d = await task(broker.queue().func, { heartrate: 20, attempts, backoff: 60_000 })()
          const { backend: b } = await broker.backend()
          // Reserved by a worker that dies at once: it never sends a finish.
          const [mine] = (await b.exchange(queue, 'dead', [], 1)).reserved
          expect(mine!.id).to.equal(d.id)
          await new Promise(r => setTimeout(r, 1100)) // let the lease (2 × 20 + 1000 ms) lapse: time itself is under test
          expect(await b.sweep(queue, 10)).to.equal(1)
          const all = samples(await prometheusMetrics(broker))
          const count = (name: string) => all.find(x => x.name === name)?.value
          const status = (s: string) => all.find(x => x.labels.status === s)?.value
          expect(status(attempts === 1 ? 'expired' : 'retried')).to.equal(1)
          expect(count('worq_task_run_seconds_count'), 'runs counted').to.equal(1)
          expect(count('worq_task_wait_seconds_count'), 'waits counted').to.equal(1)
          // Its run lasted from its start to the sweep: a second or more, in the bucket (1024, 2048] ms.
          expect(count('worq_task_run_seconds_sum'), 'run time (s)').to.be.within(1, 3)
        } finally {
          await broker.purge()
          await broker.close()
        }
      })
    }

    it('a run of an ignoreResult task cancelled while it runs counts once in the wait- and run-time histograms', async () => {
      const queue = uniqueQueue('metrics')
      const broker = getBroker(url, queue)
      try {
        await task(broker.queue().func, { ignoreResult: true })()
        const { backend: b } = await broker.backend()
        const [mine] = (await b.exchange(queue, 'w', [], 1)).reserved
        expect(await b.cancel(queue, mine!.id)).to.equal(true)
        // Its worker reports the run it measured: refused (no outcome is kept to tell it by).
        const finish = { id: mine!.id, token: mine!.token, outcome: 'c1', runMs: 5, waitMs: 3 }
        await b.exchange(queue, 'w', [finish], 0)
        const all = samples(await prometheusMetrics(broker))
        const count = (name: string) => all.find(x => x.name === name)?.value
        expect(all.find(x => x.labels.status === 'cancelled')?.value).to.equal(1)
        expect(count('worq_task_run_seconds_count'), 'runs counted').to.equal(1)
        expect(count('worq_task_wait_seconds_count'), 'waits counted').to.equal(1)
      } finally {
        await broker.close()
      }
    })

    it('a run cancelled after it returned, before its finish went out, counts once in the run-time histogram', async () => {
      const broker = getBroker(url, uniqueQueue('metrics'))
      broker.expose(function quick() {
        return 'done'
      })
      const { backend: b } = await broker.backend()
      const { exchange } = b
      const reached = latch<string>()
      const release = latch()
      // The pool's exchange that carries the run's finish waits until the test cancelled the task.
      b.exchange = async (...args) => {
        const [finish] = args[2]
        if (finish && !finish.release) {
          reached.resolve(finish.id)
          await release.promise
        }
        return exchange.apply(b, args)
      }
      const pool = new WorkerPool(broker)
      try {
        await pool.start()
        const d = await broker.queue().quick()
        expect(await reached.promise).to.equal(d.id) // returned; its finish is held
        expect(await d.cancel()).to.equal(true)
        release.resolve()
        expect(await d.wait(5000)).to.equal(true)
        expect(await d.status()).to.equal('cancelled')
        await pool.stop() // the held finish has been sent and refused
        const all = samples(await prometheusMetrics(broker))
        const count = (name: string) => all.find(x => x.name === name)?.value
        expect(count('worq_tasks_total')).to.equal(0) // completed
        expect(all.find(x => x.labels.status === 'cancelled')?.value).to.equal(1)
        expect(count('worq_task_run_seconds_count'), 'runs counted').to.equal(1)
        expect(count('worq_task_wait_seconds_count'), 'waits counted').to.equal(1)
      } finally {
        b.exchange = exchange
        await broker.close()
      }
    })
  })
}
