import { nanoid } from 'nanoid'
import { getBroker, WorkerPool, type Broker, type WorkerPoolOptions } from '../../lib/index.js'

/** A queue name no other test uses. */
export function uniqueQueue(prefix = 't'): string {
  return `${prefix}-${nanoid(8)}`
}

/** A promise with its resolve function exposed (a latch for lock-stepping tasks). */
export function latch<T = void>(): { promise: Promise<T>; resolve: (v: T) => void } {
  let resolve!: (v: T) => void
  const promise = new Promise<T>(r => (resolve = r))
  return { promise, resolve }
}

/** A broker on a fresh queue plus a started pool; `close()` stops and closes both. */
export async function withWorker(
  url: string,
  setup: (broker: Broker) => void,
  options: WorkerPoolOptions & { name?: string } = {},
): Promise<{ broker: Broker; pool: WorkerPool; close: () => Promise<void> }> {
  const broker = getBroker(url, options.name ?? uniqueQueue())
  setup(broker)
  const pool = new WorkerPool(broker, { concurrency: 4, ...options })
  await pool.start()
  return {
    broker,
    pool,
    async close() {
      await pool.stop({ timeout: 2000 })
      await broker.purge().catch(() => undefined)
      await broker.close()
    },
  }
}

/**
 * Resolves when `predicate()` is true, checking on every event-loop turn, or rejects after `ms`;
 * `what` names what it waited for (a function: read when it times out, so it can say what is left).
 */
export async function until(
  predicate: () => boolean | Promise<boolean>,
  ms = 5000,
  what: string | (() => string) = 'condition',
): Promise<void> {
  const end = Date.now() + ms
  while (!(await predicate())) {
    if (Date.now() > end)
      throw new Error(
        `timed out after ${ms} ms waiting for ${typeof what === 'string' ? what : what()}`,
      )
    await new Promise(r => setTimeout(r, 5))
  }
}

/** Resolves with the next unhandled rejection, or undefined after `ms`. */
export function unhandled(ms: number): Promise<unknown> {
  return new Promise(resolve => {
    const timer = setTimeout(() => {
      process.off('unhandledRejection', seen)
      resolve(undefined)
    }, ms)
    const seen = (reason: unknown) => {
      clearTimeout(timer)
      process.off('unhandledRejection', seen)
      resolve(reason)
    }
    process.on('unhandledRejection', seen)
  })
}
