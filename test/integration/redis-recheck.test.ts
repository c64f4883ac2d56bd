import { expect } from 'chai'
import type { Redis } from 'ioredis'
import v8 from 'node:v8'
import vm from 'node:vm'
import { getBroker, WorkerPool } from '../../lib/index.js'
import { hasBinary, helperRedis, startRedis, type RedisServer } from '../helpers/redis-server.js'
import { uniqueQueue, until } from '../helpers/util.js'

/** The ACL log's denials of user `caller` (newest first). */
async function denials(admin: Redis): Promise<number> {
  const log = (await admin.call('ACL', 'LOG')) as unknown[][]
  return log.filter(entry => {
    const i = entry.indexOf('username')
    return i >= 0 && entry[i + 1] === 'caller'
  }).length
}

describe('redis: waiters after a gap in delivery', function () {
  let server: RedisServer
  let admin: Redis
  before(async function () {
    // Skipped only without redis-server on PATH: no private server can be started then, and
    // test/helpers/backends.ts reports that as a visible skip with the command that installs it.
    if (!hasBinary()) this.skip() // reason: redis-server is not installed
    server = await startRedis()
    admin = helperRedis(server.url)
  })
  after(async () => {
    admin?.disconnect()
    await server?.stop()
  })

  it('a re-check that fails after a reconnect is tried again until the outcome is read', async () => {
    // The caller's user can be kept from hearing outcomes (no channels) and from reading them (no
    // scripts), each on its own: the outcome is published while the caller cannot hear it, and
    // its re-check after the reconnect fails at first.
    await admin.call('ACL', 'SETUSER', 'caller', 'on', '>pw', '~*', '&*', '+@all')
    await admin.call('ACL', 'LOG', 'RESET')
    const callerUrl = `redis://caller:pw@127.0.0.1:${server.port}/0`
    const queue = uniqueQueue('gap')
    const caller = getBroker(callerUrl, queue)
    const workers = getBroker(server.url, queue)
    workers.expose(function add(a: number, b: number) {
      return a + b
    })
    const pool = new WorkerPool(workers)
    try {
      const d = await caller.queue().add(1, 2)
      const result = d.result(15_000)
      // Redis drops the subscribed connection of a user who loses its channels; its reconnect
      // cannot subscribe again, so the outcome published now is not heard.
      await admin.call('ACL', 'SETUSER', 'caller', 'resetchannels')
      await pool.start()
      await until(async () => (await workers.task(d.id))?.status === 'completed', 5000, 'the run')
      // Channels back, scripts taken: the reconnect subscribes and re-checks, and the re-check
      // is refused (the ACL log shows it).
      const before = await denials(admin)
      await admin.call('ACL', 'SETUSER', 'caller', 'allchannels', '-@scripting')
      await admin.call('CLIENT', 'KILL', 'USER', 'caller')
      await until(async () => (await denials(admin)) > before, 5000, 'a refused re-check')
      await admin.call('ACL', 'SETUSER', 'caller', '+@all')
      expect(await result).to.equal(3)
    } finally {
      await pool.stop()
      await Promise.all([caller.close(), workers.close()])
      await admin.call('ACL', 'DELUSER', 'caller')
    }
  })

  it('a wait outlived by a shorter one on the same Deferred was not re-checked after a gap: it reads the outcome published during it', async () => {
    await admin.call('ACL', 'SETUSER', 'caller', 'on', '>pw', '~*', '&*', '+@all')
    const callerUrl = `redis://caller:pw@127.0.0.1:${server.port}/0`
    const queue = uniqueQueue('gap-twice')
    const caller = getBroker(callerUrl, queue)
    const workers = getBroker(server.url, queue)
    workers.expose(function add(a: number, b: number) {
      return a + b
    })
    const pool = new WorkerPool(workers)
    try {
      const d = await caller.queue().add(1, 2)
      const result = d.result(15_000)
      // A shorter wait on the same Deferred ends first: its end once unmarked the Deferred as
      // waited on, so the gap below did not re-check it, and the long wait ran out its time.
      expect(await d.wait(1)).to.equal(false)
      // The outcome is published while the caller cannot hear it (no channels: its subscribed
      // connection is dropped and cannot subscribe again)…
      await admin.call('ACL', 'SETUSER', 'caller', 'resetchannels')
      await pool.start()
      await until(async () => (await workers.task(d.id))?.status === 'completed', 5000, 'the run')
      // …then the channels come back: the reconnect subscribes, and the gap re-checks the waits.
      await admin.call('ACL', 'SETUSER', 'caller', 'allchannels')
      await admin.call('CLIENT', 'KILL', 'USER', 'caller')
      expect(await result).to.equal(3)
    } finally {
      await pool.stop()
      await Promise.all([caller.close(), workers.close()])
      await admin.call('ACL', 'DELUSER', 'caller')
    }
  })

  it('after a gap, a Deferred nobody waits on is kept only while the caller holds it; one held still settles', async () => {
    v8.setFlagsFromString('--expose-gc')
    const gc = vm.runInNewContext('gc') as () => void
    const queue = uniqueQueue('gap-weak')
    const caller = getBroker(server.url, queue)
    const workers = getBroker(server.url, queue, { watchdog: {} }) // connections of its own
    workers.expose(function add(a: number, b: number) {
      return a + b
    })
    const pool = new WorkerPool(workers)
    try {
      const q = caller.queue()
      const kept = await q.add(1, 2)
      const dropped: Array<WeakRef<object>> = []
      for (let i = 0; i < 20; i++) dropped.push(new WeakRef((await q.add(i, 0))!))
      const { hub } = await caller.backend()
      const epoch = hub.epoch
      await admin.call('CLIENT', 'KILL', 'TYPE', 'pubsub')
      await until(async () => hub.epoch > epoch, 5000, 'the gap noticed')
      // A WeakRef's target lives until the job that made it ends; then collections may take it.
      for (let round = 0; round < 5 && dropped.some(r => r.deref()); round++) {
        await new Promise(r => setImmediate(r))
        gc()
      }
      expect(dropped.filter(r => r.deref() !== undefined)).to.have.length(0)
      await pool.start()
      expect(await kept.result(10_000)).to.equal(3)
    } finally {
      await pool.stop()
      await Promise.all([caller.close(), workers.close()])
    }
  })
})
