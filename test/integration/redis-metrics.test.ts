import { expect } from 'chai'
import { getBroker, task } from '../../lib/index.js'
import { finishTimes, histogramFields } from '../../lib/backends/redis/histograms.js'
import { queueKey } from '../../lib/backends/redis/keys.js'
import { Scripts } from '../../lib/backends/redis/scripts.js'
import { prometheusMetrics } from '../../lib/metrics/index.js'
import { histogramCounts } from '../helpers/histograms.js'
import { samples } from '../helpers/promtool.js'
import { useRedisAdmin } from '../helpers/redis-server.js'
import { uniqueQueue } from '../helpers/util.js'

describe('redis: metrics totals', () => {
  const redis = useRedisAdmin()

  it('a metrics() read folds finished minutes into the totals, so none is lost when no pool runs', async () => {
    const queue = uniqueQueue('fold')
    const broker = getBroker(redis.url, queue)
    try {
      // A minute an hour ago that no sweep folded (no pool ran since), about to expire.
      const now = Date.now()
      const minute = now - (now % 60_000) - 3_600_000
      await redis.admin.hset(queueKey(queue, `m:${minute}`), 'z', '1', 'c', '5', 'f', '2')
      await redis.admin.pexpire(queueKey(queue, `m:${minute}`), 60_000)
      await redis.admin.hset(queueKey(queue, 'mt'), 'upto', String(minute))
      const read = await broker.metrics({ minutes: 5 })
      expect(read.totals).to.include({ completed: 5, failed: 2 })
      // Folded: the minute may go now, and the totals keep what it held.
      expect(Number(await redis.admin.hget(queueKey(queue, 'mt'), 'upto'))).to.be.above(minute)
      await redis.admin.del(queueKey(queue, `m:${minute}`))
      expect((await broker.metrics({ minutes: 5 })).totals).to.include({ completed: 5, failed: 2 })
    } finally {
      await redis.admin.del(queueKey(queue, 'mt'))
      await broker.close()
    }
  })
})

describe('redis: wait- and run-time histograms', () => {
  const redis = useRedisAdmin()

  it("a cancelled run's refused finish, resent after its reply was lost, counts the run once", async () => {
    const queue = uniqueQueue('histo')
    const broker = getBroker(redis.url, queue)
    const scripts = new Scripts(redis.admin)
    try {
      const d = await broker.queue().func()
      const [, flat] = await scripts.exchange(queue, 'w:n1', 1, false, '', 'w', undefined, '', [])
      const token = flat[1] as string
      expect(await d.cancel()).to.equal(true)
      // The run's finish, refused without a report (a cancel ended the run): it counts the run.
      const times = 'w1=1,ws=2,t3=1,ts=7'
      const finish = { id: d.id, token, outcome: 'c1', times }
      const send = () =>
        scripts.exchange(queue, 'w:n2', 0, false, '', 'w', undefined, times, [finish])
      expect((await send())[0]).to.deep.equal([])
      // The same call again (ioredis resends it when its reply was lost): answered as before, and
      // the run is not counted twice.
      expect((await send())[0]).to.deep.equal([])
      expect(await histogramCounts(broker)).to.deep.equal({ runs: 1, waits: 1 })
    } finally {
      await broker.close()
    }
  })

  it("a call of several finishes counts the accepted ones' times and not a refused one's", async () => {
    const queue = uniqueQueue('histo')
    const broker = getBroker(redis.url, queue)
    const scripts = new Scripts(redis.admin)
    try {
      const d = await broker.queue().func()
      const [, flat] = await scripts.exchange(queue, 'w:n1', 1, false, '', 'w', undefined, '', [])
      const done = [
        { id: d.id, token: flat[1] as string, outcome: 'c1', waitMs: 3, runMs: 7.6 },
        // Refused: its lease was lost (this token holds nothing).
        { id: 'gone', token: 'w:old.1', outcome: 'c1', waitMs: 2.5, runMs: 1500 },
        { id: 'r', token: 'w:old.2', outcome: '', release: true },
      ]
      const entries = done.map(({ id, token, outcome, release }) =>
        release ? { id, token, outcome, retryAt: 'release' as const } : { id, token, outcome },
      )
      const times = histogramFields(done)
      const [stale] = await scripts.exchange(
        queue,
        'w:n2',
        0,
        false,
        '',
        'w',
        undefined,
        times,
        entries,
        finishTimes(done),
      )
      expect(stale).to.deep.equal(['gone'])
      const all = samples(await prometheusMetrics(broker))
      const value = (name: string, le?: string) =>
        all.find(x => x.name === name && (le === undefined || x.labels.le === le))?.value
      expect(value('worq_task_run_seconds_count')).to.equal(1)
      expect(value('worq_task_run_seconds_sum')).to.equal(0.008)
      expect(value('worq_task_run_seconds_bucket', '0.004')).to.equal(0)
      expect(value('worq_task_run_seconds_bucket', '0.008')).to.equal(1)
      expect(value('worq_task_wait_seconds_count')).to.equal(1)
      expect(value('worq_task_wait_seconds_sum')).to.equal(0.003)
      expect(value('worq_task_wait_seconds_bucket', '0.004')).to.equal(1)
    } finally {
      await broker.close()
    }
  })

  it('a run whose worker died counts once, in the sweep that puts it back or expires it', async () => {
    for (const attempts of [2, 1]) {
      const queue = uniqueQueue('histo')
      const broker = getBroker(redis.url, queue)
      try {
        await task(broker.queue().func, { heartrate: 20, attempts, backoff: 60_000 })()
        const { backend: b } = await broker.backend()
        expect((await b.exchange(queue, 'dead', [], 1)).reserved).to.have.length(1)
        await new Promise(r => setTimeout(r, 1100)) // let the lease (2 × 20 + 1000 ms) lapse: time itself is under test
        expect(await b.sweep(queue, 10)).to.equal(1)
        const counted = await histogramCounts(broker)
        expect(counted, `attempts: ${attempts}`).to.deep.equal({ runs: 1, waits: 1 })
      } finally {
        await broker.purge()
        await broker.close()
      }
    }
  })
})
