/**
 * A Redis server that is away: calls wait for it at most `connectTimeoutMs`, then fail with
 * BackendUnreachable saying where and why, and a call that failed is never sent later.
 */
import { expect } from 'chai'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { ChildProcess } from 'node:child_process'
import { BackendUnreachable, getBroker, task, WorkerPool } from '../../lib/index.js'
import { freePort, hasBinary, INSTALL, launch, terminate } from '../helpers/redis-server.js'
import { uniqueQueue } from '../helpers/util.js'

/** Slack for a busy 2-core machine on top of a bound (timers fire late, never early). */
const ALLOWANCE = 2000

/** A call's error and how long it took. */
async function failure(call: () => Promise<unknown>): Promise<{ err: unknown; ms: number }> {
  const start = Date.now()
  const err = await call().then(
    () => undefined,
    (e: unknown) => e,
  )
  return { err, ms: Date.now() - start }
}

function expectUnreachable(err: unknown, url: string): void {
  expect(err).to.be.instanceOf(BackendUnreachable)
  expect((err as BackendUnreachable).code).to.equal('ERR_WORQ_BACKEND_UNREACHABLE')
  expect((err as Error).message)
    .to.include(url)
    .and.to.include('connectTimeoutMs')
}

describe('redis: a server that is away', function () {
  before(function () {
    if (!hasBinary()) throw new Error(INSTALL)
  })

  it('on a port where nothing listens, a call, a read and a pool start fail within connectTimeoutMs with BackendUnreachable; a later call tries again', async () => {
    const url = `redis://127.0.0.1:${await freePort()}/0`
    const broker = getBroker(url, uniqueQueue(), { connectTimeoutMs: 500 })
    broker.expose(function add(a: number, b: number) {
      return a + b
    })
    try {
      for (const call of [
        () => broker.queue().add(1, 2),
        () => broker.size(),
        () => new WorkerPool(broker).start(),
        () => broker.queue().add(3, 4),
      ]) {
        const { err, ms } = await failure(call)
        expectUnreachable(err, url)
        expect((err as Error).message).to.include('ECONNREFUSED')
        expect(ms)
          .to.be.at.least(450)
          .and.below(500 + ALLOWANCE)
      }
    } finally {
      await broker.close()
    }
  })

  describe('a server stopped and started again on its port', () => {
    let port: number
    let url: string
    let dir: string
    let child: ChildProcess | undefined
    before(async () => {
      port = await freePort()
      url = `redis://127.0.0.1:${port}/0`
      dir = mkdtempSync(join(tmpdir(), 'worq-unreachable-'))
    })
    beforeEach(async () => {
      child = await launch(port, dir, {})
    })
    afterEach(async () => {
      if (child) await terminate(child)
      child = undefined
    })
    after(() => rmSync(dir, { recursive: true, force: true }))

    it('a call made while it is down, back within connectTimeoutMs, is sent once it is back and runs', async () => {
      const broker = getBroker(url, uniqueQueue(), { connectTimeoutMs: 10_000 })
      broker.expose(function add(a: number, b: number) {
        return a + b
      })
      const pool = new WorkerPool(broker, { concurrency: 2 })
      try {
        await pool.start()
        expect(await (await broker.queue().add(1, 2)).result(5000)).to.equal(3)
        await terminate(child!)
        child = undefined
        const during = broker.queue().add(20, 3)
        child = await launch(port, dir, {})
        expect(await (await during).result(10_000)).to.equal(23)
      } finally {
        await pool.stop({ timeout: 2000 })
        await broker.close()
      }
    })

    it('a call that gave up while it was down is never sent after it is back', async () => {
      const broker = getBroker(url, uniqueQueue(), { connectTimeoutMs: 300 })
      broker.expose(function add(a: number, b: number) {
        return a + b
      })
      try {
        await task(broker.queue().add, { id: 'before' })(1, 2)
        await terminate(child!)
        child = undefined
        const { err, ms } = await failure(() => task(broker.queue().add, { id: 'gave-up' })(3, 4))
        expectUnreachable(err, url)
        expect(ms).to.be.at.least(250)
        child = await launch(port, dir, {})
        // The connection comes back (ioredis retries); a new call goes through...
        let after: unknown
        for (let i = 0; i < 50 && !after; i++) {
          after = await task(broker.queue().add, { id: 'after' })(5, 6).catch(() => undefined)
        }
        expect(after, 'a call once the server is back').to.not.equal(undefined)
        // ...and the call that gave up was not sent on the reconnect before it.
        expect(await broker.task('gave-up')).to.equal(undefined)
        expect((await broker.task('after'))!.status).to.equal('enqueued')
      } finally {
        await broker.close()
      }
    })
  })
})
