/**
 * A postgres:// exchange whose connection drops after its commit, before its reply: the pool sends
 * the statement again (pool.ts), and the run it finished must count once in the wait- and run-time
 * histograms. A proxy forwards the exchange that carries the marker, then cuts the connection at
 * the first byte of its reply.
 */
import { expect } from 'chai'
import { createConnection, createServer } from 'node:net'
import { getBroker, task } from '../../lib/index.js'
import { prometheusMetrics } from '../../lib/metrics/index.js'
import { postgresUrl } from '../helpers/postgres.js'
import { samples } from '../helpers/promtool.js'
import { uniqueQueue } from '../helpers/util.js'

/** A proxy to `target` that, once armed with a marker, cuts the connection that sent it at its reply. */
async function cutAtReply(target: string) {
  const to = new URL(target)
  let marker: string | undefined
  const server = createServer(client => {
    const upstream = createConnection(Number(to.port || 5432), to.hostname)
    let cut = false
    for (const s of [client, upstream]) {
      s.on('error', () => undefined)
      s.on('close', () => {
        client.destroy()
        upstream.destroy()
      })
    }
    client.on('data', (chunk: Buffer) => {
      if (marker !== undefined && chunk.includes(marker)) {
        cut = true
        marker = undefined
      }
      upstream.write(chunk)
    })
    upstream.on('data', (chunk: Buffer) => {
      if (!cut) return void client.write(chunk)
      client.destroy()
      upstream.destroy()
    })
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const via = new URL(target)
  via.host = `127.0.0.1:${(server.address() as { port: number }).port}`
  return {
    url: via.toString(),
    arm: (m: string) => void (marker = m),
    close: () => void server.close(),
  }
}

describe('postgres: an exchange sent again after its commit', () => {
  it('counts the run it finished once in the wait- and run-time histograms', async () => {
    const proxy = await cutAtReply(await postgresUrl())
    const queue = uniqueQueue('pgresend')
    const broker = getBroker(proxy.url, queue)
    try {
      const marker = `cut-${queue}`
      await task(broker.queue().func, { id: marker })()
      const { backend: b } = await broker.backend()
      const [mine] = (await b.exchange(queue, 'w', [], 1)).reserved
      proxy.arm(marker)
      const finish = { id: mine!.id, token: mine!.token, outcome: 'c1', runMs: 5, waitMs: 3 }
      // Committed, its reply cut: sent again, it finds the task ended by this very finish.
      expect((await b.exchange(queue, 'w', [finish], 0)).stale).to.deep.equal([])
      const all = samples(await prometheusMetrics(broker))
      const value = (name: string) => all.find(x => x.name === name)?.value
      expect(all.find(x => x.labels.status === 'completed')?.value).to.equal(1)
      expect(value('worq_task_run_seconds_count'), 'runs counted').to.equal(1)
      expect(value('worq_task_wait_seconds_count'), 'waits counted').to.equal(1)
    } finally {
      await broker.close()
      proxy.close()
    }
  })
})
