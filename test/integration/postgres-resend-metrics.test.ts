/**
 * A postgres:// exchange whose connection drops after its commit, before its reply: the pool sends
 * the statement again (pool.ts), and the run it finished must count once in the wait- and run-time
 * histograms. A proxy forwards the exchange that carries the marker, then cuts the connection at
 * the first byte of its reply.
 */
import { expect } from 'chai'
import type { Finish } from '../../lib/backends/records.js'
import { getBroker, task } from '../../lib/index.js'
import { expiredOutcome } from '../../lib/outcome.js'
import { prometheusMetrics } from '../../lib/metrics/index.js'
import { cutAtReply } from '../helpers/cut-at-reply.js'
import { postgresUrl } from '../helpers/postgres.js'
import { samples } from '../helpers/promtool.js'
import { uniqueQueue } from '../helpers/util.js'

describe('postgres: an exchange sent again after its commit', () => {
  /**
   * Reserves one task (made by `options`) as worker `w`, lets `before` act on it, then sends the
   * finish `make` builds through the proxy, which cuts the exchange's reply so the pool sends it
   * again; resolves to that exchange's stale ids and the queue's Prometheus samples.
   */
  async function resent(
    options: { attempts?: number; ignoreResult?: boolean },
    make: (id: string, token: string, queue: string) => Finish,
    before?: (cancel: (id: string) => Promise<boolean>, id: string) => Promise<void>,
  ) {
    const proxy = await cutAtReply(await postgresUrl())
    const queue = uniqueQueue('pgresend')
    const broker = getBroker(proxy.url, queue)
    try {
      const marker = `cut-${queue}`
      await task(broker.queue().func, { id: marker, ...options })()
      const { backend: b } = await broker.backend()
      const [mine] = (await b.exchange(queue, 'w', [], 1)).reserved
      await before?.(id => b.cancel(queue, id), mine!.id)
      proxy.arm(marker)
      const finish = { ...make(mine!.id, mine!.token, queue), runMs: 5, waitMs: 3 }
      // Committed, its reply cut: sent again, it finds its own earlier work.
      const { stale } = await b.exchange(queue, 'w', [finish], 0)
      expect(proxy.cuts(), 'replies cut').to.equal(1)
      const all = samples(await prometheusMetrics(broker))
      return {
        stale,
        value: (name: string) => all.find(x => x.name === name)?.value,
        status: (s: string) => all.find(x => x.labels.status === s)?.value,
      }
    } finally {
      await broker.purge()
      await broker.close()
      proxy.close()
    }
  }

  it('counts the run it finished once in the wait- and run-time histograms', async () => {
    const { stale, value, status } = await resent({}, (id, token) => ({ id, token, outcome: 'c1' }))
    expect(stale).to.deep.equal([])
    expect(status('completed')).to.equal(1)
    expect(value('worq_task_run_seconds_count'), 'runs counted').to.equal(1)
    expect(value('worq_task_wait_seconds_count'), 'waits counted').to.equal(1)
  })

  it('counts the run it put back for a retry once, and reports no lost lease', async () => {
    const { stale, value, status } = await resent({ attempts: 2 }, (id, token, queue) => ({
      id,
      token,
      outcome: expiredOutcome('func', queue, id, 'again', 1),
      retryAt: Date.now() + 60_000,
    }))
    expect(status('retried')).to.equal(1)
    expect(value('worq_task_run_seconds_count'), 'runs counted').to.equal(1)
    expect(value('worq_task_wait_seconds_count'), 'waits counted').to.equal(1)
    expect(stale, 'stale').to.deep.equal([])
  })

  it('counts the run of an ignoreResult task it finished once', async () => {
    const { value, status } = await resent({ ignoreResult: true }, (id, token) => ({
      id,
      token,
      outcome: 'c1',
    }))
    expect(status('completed')).to.equal(1)
    expect(value('worq_task_run_seconds_count'), 'runs counted').to.equal(1)
    expect(value('worq_task_wait_seconds_count'), 'waits counted').to.equal(1)
  })

  it('counts the run a cancel ended once, with the finish the cancel refused', async () => {
    const { stale, value, status } = await resent(
      {},
      (id, token) => ({ id, token, outcome: 'c1' }),
      async (cancel, id) => void expect(await cancel(id)).to.equal(true),
    )
    expect(stale, 'stale').to.deep.equal([])
    expect(status('cancelled')).to.equal(1)
    expect(value('worq_task_run_seconds_count'), 'runs counted').to.equal(1)
    expect(value('worq_task_wait_seconds_count'), 'waits counted').to.equal(1)
  })
})
