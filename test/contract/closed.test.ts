/**
 * A closed broker on every backend: each operation through it, its Deferreds and its event
 * streams rejects with `BrokerClosed` at once (docs/errors.md, docs/lifecycle.md). Found by a
 * hostile-user probe: memory:// answered after close, and its `for await` over events() never
 * ended; a wait on a Deferred ran out its time and rejected `WaitTimeout` on every backend.
 */
import { expect } from 'chai'
import { BrokerClosed, getBroker, type QueueEvent } from '../../lib/index.js'
import { openBackend } from '../../lib/backends/index.js'
import { backends } from '../helpers/backends.js'
import { uniqueQueue } from '../helpers/util.js'

/** Purges `queue` through a broker of its own (the test's broker is closed). */
async function purge(url: string, queue: string): Promise<void> {
  const broker = getBroker(url, queue)
  await broker.purge()
  await broker.close()
}

/** What `promise` rejects with (fails the test when it resolves). */
async function rejection(promise: Promise<unknown>, what: string): Promise<unknown> {
  return promise.then(
    value => expect.fail(`${what} resolved with ${String(value)} after close`),
    (err: unknown) => err,
  )
}

for (const backend of backends) {
  describe(`contract: a closed broker [${backend.name}]`, () => {
    let url: string
    before(async () => {
      url = await backend.url()
    })

    it('memory answered info()/status() after close: every operation rejects BrokerClosed', async () => {
      const queue = uniqueQueue('closed-ops')
      const broker = getBroker(url, queue)
      const d = await broker.queue().echo(1) // no worker: it stays enqueued
      await broker.close()
      await purge(url, queue)
      const calls: Record<string, () => Promise<unknown>> = {
        'broker.task': () => broker.task(d.id),
        'broker.size': () => broker.size(),
        'broker.inspect': () => broker.inspect(),
        'broker.settings': () => broker.settings(),
        'broker.limits': () => broker.limits(),
        'broker.schedules': () => broker.schedules(),
        'broker.metrics': () => broker.metrics(),
        'broker.cancel': () => broker.cancel(d.id),
        'deferred.status': () => d.status(),
        'deferred.info': () => d.info(),
        'deferred.cancel': () => d.cancel(),
      }
      for (const [what, call] of Object.entries(calls)) {
        const err = await rejection(call(), what)
        expect(err, what).to.be.instanceOf(BrokerClosed)
        expect(err, what).to.have.property('code', 'ERR_WORQ_CLOSED')
      }
    })

    it('an open for await over events() never ended on memory: it throws BrokerClosed at close', async () => {
      const queue = uniqueQueue('closed-events')
      const broker = getBroker(url, queue)
      const events = broker.events()
      await events.ready
      const seen: QueueEvent[] = []
      const loop = rejection(
        (async () => {
          for await (const e of events) seen.push(e)
        })(),
        'the for await',
      )
      await broker.queue().echo(1)
      const closedAt = Date.now()
      await broker.close()
      const err = await loop
      expect(err).to.be.instanceOf(BrokerClosed)
      // At once: not after a backend's blocking read (5 s) ran out.
      expect(Date.now() - closedAt).to.be.below(2000)
      await purge(url, queue)
      // A stream made before the close and iterated after it throws the same.
      const late = getBroker(url, uniqueQueue('closed-events'))
      const unread = late.events()
      await unread.ready
      await late.close()
      const lateErr = await rejection(
        (async () => {
          for await (const e of unread) seen.push(e)
        })(),
        'a for await begun after close',
      )
      expect(lateErr).to.be.instanceOf(BrokerClosed)
    })

    it('a wait started after close timed out with WaitTimeout: it rejects BrokerClosed at once', async () => {
      const queue = uniqueQueue('closed-wait')
      const broker = getBroker(url, queue)
      const d = await broker.queue().echo(1)
      await broker.close()
      await purge(url, queue)
      const startedAt = Date.now()
      for (const [what, wait] of [
        ['result(5000)', () => d.result(5000)],
        ['wait(5000)', () => d.wait(5000)],
        ['wait(0)', () => d.wait(0)],
      ] as const)
        expect(await rejection(wait(), what), what).to.be.instanceOf(BrokerClosed)
      expect(Date.now() - startedAt).to.be.below(2000)
    })

    it('a wait pending when its broker closes rejected WaitTimeout later: it rejects BrokerClosed at once', async () => {
      const queue = uniqueQueue('closed-pending')
      const broker = getBroker(url, queue)
      const d = await broker.queue().echo(1) // no worker: nothing settles it
      const pending = [d.result(10_000), d.wait(10_000)].map((p, i) => rejection(p, `wait ${i}`))
      const closedAt = Date.now()
      const closing = broker.close()
      for (const err of await Promise.all(pending)) expect(err).to.be.instanceOf(BrokerClosed)
      expect(Date.now() - closedAt).to.be.below(2000)
      await closing
      await purge(url, queue)
    })

    it('a wait outlived by another on the same Deferred timed out at close: both kinds reject BrokerClosed at once', async () => {
      const queue = uniqueQueue('closed-twice')
      const broker = getBroker(url, queue)
      const d = await broker.queue().echo(1) // no worker: nothing settles it
      const long = [d.result(10_000), d.wait(10_000)].map((p, i) => rejection(p, `long wait ${i}`))
      // Shorter waits on the same Deferred, begun and ended while the long ones are under way:
      // their end once unmarked the Deferred, and the close then missed the long waits.
      expect(await d.wait(1)).to.equal(false)
      expect(await rejection(d.result(1), 'result(1)')).to.have.property(
        'code',
        'ERR_WORQ_WAIT_TIMEOUT',
      )
      const closedAt = Date.now()
      const closing = broker.close()
      for (const err of await Promise.all(long)) expect(err).to.be.instanceOf(BrokerClosed)
      expect(Date.now() - closedAt).to.be.below(2000)
      await closing
      await purge(url, queue)
    })

    it('waitForWork answers no work at close on every backend, one under way or one called after', async () => {
      // The backend contract (docs/backends.md): the one method that does not reject BrokerClosed
      // after close, so a worker's idle wait needs no error path; its next exchange rejects. A
      // backend of its own (connectTimeoutMs: not shared with the brokers of other tests).
      const handle = await openBackend(url, { connectTimeoutMs: 5000 })
      const queue = uniqueQueue('closed-wait-work')
      const underWay = handle.backend.waitForWork(queue, 'worker-1', 10_000)
      const closedAt = Date.now()
      await handle.release() // its last user: the backend closes
      expect(await underWay).to.deep.equal([])
      expect(await handle.backend.waitForWork(queue, 'worker-1', 10_000)).to.deep.equal([])
      expect(Date.now() - closedAt).to.be.below(2000)
      const err = await rejection(handle.backend.exchange(queue, 'worker-1', [], 1), 'exchange')
      expect(err).to.be.instanceOf(BrokerClosed)
    })

    it('a Deferred that holds its outcome still reads it after close (no round trip)', async () => {
      const broker = getBroker(url, uniqueQueue('closed-held'))
      const d = await broker.queue().echo(1)
      await broker.cancel(d.id)
      expect(await d.status()).to.equal('cancelled')
      await broker.close()
      expect(await d.wait(1000)).to.equal(true)
      expect(await d.status()).to.equal('cancelled')
      expect(() => d.value).to.throw(/cancelled/)
    })
  })
}
