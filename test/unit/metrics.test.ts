import { expect } from 'chai'
import { getBroker, type Broker } from '../../lib/index.js'
import { prometheusMetrics } from '../../lib/metrics/index.js'
import { quantile } from '../../lib/metrics/summary.js'
import { TIME_BUCKETS_MS } from '../../lib/backends/backend.js'
import { promtoolCheck, samples } from '../helpers/promtool.js'
import { uniqueQueue } from '../helpers/util.js'

/** Each series (name and labels) of an exposition text, and how often it appears. */
function seriesCounts(text: string): Map<string, number> {
  const counts = new Map<string, number>()
  for (const s of samples(text)) {
    const key = `${s.name}${JSON.stringify(Object.entries(s.labels).sort())}`
    counts.set(key, (counts.get(key) ?? 0) + 1)
  }
  return counts
}

describe('metrics: Prometheus text and percentiles', () => {
  const opened: Broker[] = []
  const open = (url: string, queue: string) => {
    const b = getBroker(url, queue)
    opened.push(b)
    return b
  }
  afterEach(async () => {
    await Promise.all(opened.splice(0).map(b => b.close()))
  })

  it('prometheusMetrics([b, b]) printed every series twice (a scrape rejects it): once now', async () => {
    const queue = uniqueQueue('prom')
    const b = open('memory://prom-dedupe', queue)
    const same = open('memory://prom-dedupe', queue) // another broker of the same queue
    const other = open('memory://prom-dedupe', uniqueQueue('prom'))
    for (const brokers of [
      [b, b],
      [b, same],
      [b, same, other, b],
    ]) {
      const text = await prometheusMetrics(brokers)
      expect(promtoolCheck(text)).to.equal('')
      const repeated = [...seriesCounts(text)].filter(([, n]) => n > 1).map(([k]) => k)
      expect(repeated, `${brokers.length} brokers`).to.deep.equal([])
    }
    // The text of the distinct queues is what each would print alone.
    const both = await prometheusMetrics([b, same, other, b])
    const alone = (await prometheusMetrics([b, other])).split('\n')
    expect(both.split('\n')).to.deep.equal(alone)
  })

  it('one queue name on two different backends would print clashing series: a TypeError naming both', async () => {
    const queue = uniqueQueue('prom')
    const a = open('memory://prom-a', queue)
    const c = open('memory://prom-c', queue)
    const err = await prometheusMetrics([a, c]).catch((e: unknown) => e)
    expect(err).to.be.instanceOf(TypeError)
    expect((err as Error).message)
      .to.match(/^Expected `brokers` to/)
      .and.include('memory://prom-a')
      .and.include('memory://prom-c')
      .and.include(`"${queue}"`)
  })

  it('the clash names the backends without their passwords', async () => {
    const queue = uniqueQueue('prom')
    const a = open('redis://user:secret1@127.0.0.1:1/0', queue)
    const c = open('redis://user:secret2@127.0.0.1:2/0', queue)
    const err = (await prometheusMetrics([a, c]).catch((e: unknown) => e)) as Error
    expect(err).to.be.instanceOf(TypeError)
    expect(err.message).to.include('redis://user:***@127.0.0.1:1/0').and.not.include('secret')
  })

  it('prometheusMetrics(\'x\') failed with "b.metricsData is not a function": a TypeError naming `brokers`', async () => {
    const b = open('memory://prom-bad', uniqueQueue('prom'))
    for (const bad of ['x', null, undefined, 42, {}, [b, 'x'], [null]]) {
      const err = await prometheusMetrics(bad as never).catch((e: unknown) => e)
      expect(err, String(bad)).to.be.instanceOf(TypeError)
      expect((err as Error).message, String(bad)).to.match(
        /^Expected `brokers` to be a Broker or an array of Brokers/,
      )
    }
  })

  it('broker.metrics(null) failed with "Cannot read properties of null": a TypeError naming `options`', async () => {
    const b = open('memory://prom-bad', uniqueQueue('prom'))
    for (const bad of [null, 'x', 5, [1]]) {
      const err = await b.metrics(bad as never).catch((e: unknown) => e)
      expect(err, String(bad)).to.be.instanceOf(TypeError)
      expect((err as Error).message, String(bad)).to.match(/^Expected `options` to be an object/)
    }
    expect((await b.metrics()).queue).to.equal(b.name)
  })

  it('a p95 of three runs read 0.9499999999999998: percentiles are the exact decimal', () => {
    const of = (bucket: number, n: number) => {
      const buckets = new Array<number>(TIME_BUCKETS_MS.length + 1).fill(0)
      buckets[bucket] = n
      return buckets
    }
    for (let n = 1; n <= 50; n++) {
      // n durations all in (0, 1] ms: quantile q reads q ms exactly.
      expect(quantile(of(0, n), 0.95), `p95 of ${n}`).to.equal(0.95)
      expect(quantile(of(0, n), 0.99), `p99 of ${n}`).to.equal(0.99)
      expect(quantile(of(0, n), 0.5), `p50 of ${n}`).to.equal(0.5)
    }
    // Three in (64, 128] ms: 64 + 64 × 2.85 / 3 = 124.8, and 64 + 64 × 2.97 / 3 = 127.36.
    expect(quantile(of(7, 3), 0.95)).to.equal(124.8)
    expect(quantile(of(7, 3), 0.99)).to.equal(127.36)
  })

  it('every le label of the histograms is the exact decimal of its bound in seconds', async () => {
    const b = open('memory://prom-le', uniqueQueue('prom'))
    const les = samples(await prometheusMetrics(b))
      .filter(s => s.name === 'worq_task_run_seconds_bucket')
      .map(s => s.labels.le)
    expect(les).to.deep.equal([
      ...TIME_BUCKETS_MS.map(ms => (ms / 1000).toFixed(3).replace(/\.?0+$/, '')),
      '+Inf',
    ])
  })
})
