import { expect } from 'chai'
import { createConnection, createServer, type Server, type Socket } from 'node:net'
import { storedBackoff } from '../../lib/backends/backend.js'
import { RedisBackend } from '../../lib/backends/redis/redis.js'
import { redisUrl } from '../helpers/redis-server.js'
import { uniqueQueue } from '../helpers/util.js'

/** A TCP proxy that can go silent on its open connections (a half-open socket, seen from the client). */
async function silentProxy(target: URL): Promise<{ url: string; freeze(): void; close(): void }> {
  const open = new Set<Socket>()
  const server: Server = createServer(client => {
    const upstream = createConnection(Number(target.port), target.hostname)
    for (const s of [client, upstream]) {
      open.add(s)
      s.on('error', () => undefined)
      s.on('close', () => open.delete(s))
    }
    client.pipe(upstream)
    upstream.pipe(client)
  })
  await new Promise<void>(r => server.listen(0, '127.0.0.1', r))
  const { port } = server.address() as { port: number }
  return {
    url: `redis://127.0.0.1:${port}/0`,
    freeze() {
      for (const s of open) {
        s.unpipe()
        s.pause()
      }
    },
    close() {
      for (const s of open) s.destroy()
      server.close()
    },
  }
}

describe('redis: blocking watchdog', () => {
  it('a BLPOP that goes silent is dropped and re-issued: the waiter still wakes on new work', async () => {
    const url = await redisUrl()
    const proxy = await silentProxy(new URL(url))
    const queue = uniqueQueue('dog')
    const timing = { blockMs: 200, marginMs: 200 }
    const worker = new RedisBackend(new URL(proxy.url), proxy.url, {
      maxPayloadBytes: 1 << 20,
      timing,
    })
    const client = new RedisBackend(new URL(url), url, { maxPayloadBytes: 1 << 20 })
    try {
      await worker.size(queue) // connected
      const woke = worker.waitForWork(queue, 30_000)
      await new Promise(r => setTimeout(r, 50)) // let the first BLPOP go out, then silence it
      proxy.freeze()
      const started = Date.now()
      await new Promise(r => setTimeout(r, timing.blockMs + timing.marginMs + 100))
      await client.enqueue(queue, [
        {
          id: 'x',
          name: 'f',
          payload: '[]',
          deps: [],
          onError: 'fail',
          ignoreResult: true,
          resultTimeout: 1000,
          heartrate: 1000,
          attempts: 1,
          backoff: storedBackoff(undefined),
          runAt: 0,
          timeout: 0,
        },
      ])
      await woke
      expect(Date.now() - started).to.be.below(5000)
      await client.purge(queue)
    } finally {
      proxy.close()
      await Promise.all([worker.close(), client.close()])
    }
  })
})
