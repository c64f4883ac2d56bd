/**
 * A queue served by worqHttp for the API tests: a broker on a fresh queue exposing the `t` space,
 * a worker pool running it, and the handler on a loopback port. `t.hold` runs until the test
 * releases it, so a test can catch a task while it runs.
 */
import { getBroker, TaskSpace, WorkerPool, type Broker, type TaskContext } from '../../lib/index.js'
import { worqHttp, type WorqHttpHandler, type WorqHttpOptions } from '../../lib/http/index.js'
import { serve, type TestServer } from './http.js'
import { latch, uniqueQueue } from './util.js'

/** The tasks the fixture's workers run. */
export function testSpace(held: { promise: Promise<void> }) {
  return new TaskSpace('t', {
    add: (a: number, b: number) => a + b,
    echo: (...args: unknown[]) => args,
    fails: (message: string) => {
      throw new RangeError(message)
    },
    types: (v: unknown) => ({ kind: Object.prototype.toString.call(v), when: new Date(0) }),
    async hold(this: TaskContext, steps: number) {
      for (let i = 1; i <= steps; i++) this.progress({ done: i, total: steps })
      await Promise.race([
        held.promise,
        new Promise((_, reject) =>
          this.signal.addEventListener('abort', () => reject(this.signal.reason)),
        ),
      ])
      return 'released'
    },
  })
}

/** A served queue. */
export interface ApiFixture {
  broker: Broker
  brokers: Broker[]
  pool: WorkerPool
  handler: WorqHttpHandler
  server: TestServer
  /** Lets every running `t.hold` finish. */
  release: () => void
  close: () => Promise<void>
}

/** Serves fresh queues (the first with a worker pool) on `url` with `options`. */
export async function serveApi(
  url: string,
  options: WorqHttpOptions = {},
  { queues = 1, worker = true } = {},
): Promise<ApiFixture> {
  const held = latch()
  const brokers = Array.from({ length: queues }, () =>
    getBroker(url, uniqueQueue('http')).expose(testSpace(held)),
  )
  const broker = brokers[0]!
  const pool = new WorkerPool(broker, { concurrency: 4, sweepInterval: 200 })
  if (worker) await pool.start()
  const handler = worqHttp(brokers.length === 1 ? broker : brokers, options)
  const server = await serve(handler)
  return {
    broker,
    brokers,
    pool,
    handler,
    server,
    release: () => held.resolve(),
    async close() {
      held.resolve()
      await handler.close()
      await server.close()
      await pool.stop({ timeout: 1000 })
      for (const b of brokers) {
        await b.purge().catch(() => undefined)
        await b.close()
      }
    },
  }
}
