import { expect } from 'chai'
import { BrokerClosed } from '../../lib/index.js'
import { MemoryBackend } from '../../lib/backends/memory/memory.js'
import type { Backend } from '../../lib/backends/backend.js'

// The backend contract, as Redis and PostgreSQL keep it: once closed, every operation of a
// backend rejects with BrokerClosed (a waitForWork answers no work). memory:// answered reads
// (status, info, inspect, …) after close, and its event reads waited on. The contract suite
// (test/contract/closed.test.ts) checks the same through a closed broker on every backend.
describe('memory: a closed backend', () => {
  it('memory answered status/info after close: every operation rejects BrokerClosed', async () => {
    const b = new MemoryBackend('memory://closed-backend', { maxPayloadBytes: 1 << 20 })
    await b.close()
    const q = 'q'
    const calls: Partial<Record<keyof Backend, () => Promise<unknown>>> = {
      enqueue: () => b.enqueue(q, []),
      exchange: () => b.exchange(q, 'w', [], 1),
      renew: () => b.renew(q, []),
      progress: () => b.progress(q, []),
      sweep: () => b.sweep(q, 1000),
      status: () => b.status(q, 'id'),
      info: () => b.info(q, 'id'),
      list: () => b.list(q, { limit: 10, offset: 0 }),
      cancel: () => b.cancel(q, 'id'),
      size: () => b.size(q),
      purge: () => b.purge(q),
      listen: () => b.listen(() => undefined),
      control: () => b.control(q, () => undefined),
      registerWorker: () => b.registerWorker(q, { id: 'w' } as never, 1000),
      unregisterWorker: () => b.unregisterWorker(q, 'w'),
      inspect: () => b.inspect(q),
      settings: () => b.settings(q),
      configure: () => b.configure(q, { events: true }),
      pause: () => b.pause(q, true),
      cacheDelete: () => b.cacheDelete(q, 'k'),
      cacheClear: () => b.cacheClear(q),
      cacheSize: () => b.cacheSize(q),
      setLimit: () => b.setLimit(q, 'x', { concurrency: 1 }),
      listLimits: () => b.listLimits(q),
      putSchedule: () => b.putSchedule(q, {} as never),
      removeSchedule: () => b.removeSchedule(q, 's'),
      schedules: () => b.schedules(q),
      fireSchedule: () => b.fireSchedule(q, 's', undefined, 0, null, null),
      readEvents: () => b.readEvents(q, 'now', { count: 1, blockMs: 60_000 }),
      metrics: () => b.metrics(q, 1),
      checks: () => b.checks(),
    }
    for (const [what, call] of Object.entries(calls)) {
      const err = await call().then(
        () => expect.fail(`${what} resolved after close`),
        (e: unknown) => e,
      )
      expect(err, what).to.be.instanceOf(BrokerClosed)
    }
    expect(await b.waitForWork(q, 'w', 60_000)).to.deep.equal([])
  })

  it('an event read waiting when the backend closes answers, and the next read rejects', async () => {
    const b = new MemoryBackend('memory://closed-backend', { maxPayloadBytes: 1 << 20 })
    const waiting = b.readEvents('q', 'now', { count: 1, blockMs: 60_000 })
    await b.close()
    expect((await waiting).events).to.deep.equal([])
    const err = await b.readEvents('q', 'now', { count: 1, blockMs: 60_000 }).catch(e => e)
    expect(err).to.be.instanceOf(BrokerClosed)
  })
})
