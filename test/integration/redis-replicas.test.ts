/**
 * `replicas: 1` while no replica answers: an exchange still runs on the master (it finishes and
 * reserves), and only its WAIT falls short. The worker runs what it reserved (the reservation holds
 * on the master; dropped, it would lapse and the task expire unrun) and sends the finishes again
 * until a WAIT confirms them, so a failover after the replica is back keeps them.
 */
import { expect } from 'chai'
import { getBroker, ReplicationTimeout, task, TaskSpace, WorkerPool } from '../../lib/index.js'
import { hasBinary } from '../helpers/redis-server.js'
import { startSentinels, type SentinelSet } from '../helpers/redis-sentinel.js'
import { uniqueQueue } from '../helpers/util.js'

describe('redis: replicas: 1 while the replica is down', function () {
  this.timeout(60_000)
  let set: SentinelSet | undefined
  before(async function () {
    // The test starts its own Sentinel set (a master, a replica, three sentinels) from the
    // redis-server binary; without it there is nothing to run against. .ci/run installs it.
    if (!hasBinary()) this.skip() // reason: redis-server is not installed (no Sentinel set to start)
    set = await startSentinels()
  })
  after(async () => {
    await set?.stop()
  })

  it('a worker runs what an unconfirmed exchange reserved; with the replica back, a failover keeps every outcome', async () => {
    const s = set!
    const queue = uniqueQueue('replicas')
    const options = { replicas: 1, replicaTimeoutMs: 150 }
    const caller = getBroker(s.url, queue, options)
    const worker = getBroker(s.url, queue, options)
    const runs = new Map<string, number>()
    worker.expose(
      new TaskSpace('', {
        run(id: string) {
          runs.set(id, (runs.get(id) ?? 0) + 1)
          return `ran ${id}`
        },
      }),
    )
    const pool = new WorkerPool(worker, { concurrency: 4 })
    const errors: Error[] = []
    pool.on('pool:error', err => errors.push(err))
    const lost: string[] = []
    pool.on('lease:lost', ({ id }) => lost.push(id))
    // Tasks that keep no outcome too: a finish sent again finds nothing to know it by.
    const quiet = ['q0', 'q1', 'q2']
    // So does the call refused with ReplicationTimeout: its task is on the master.
    const othersRan = new Promise<void>(resolve =>
      pool.on('task:end', () => [...quiet, 'refused'].every(id => runs.has(id)) && resolve()),
    )
    const ids = Array.from({ length: 20 }, (_, i) => `t${i}`)
    try {
      // Confirmed while the replica is up.
      const calls = await Promise.all(ids.map(id => caller.queue().run(id)))
      await Promise.all(quiet.map(id => task(caller.queue().run, { ignoreResult: true })(id)))
      const master = await s.master()
      const replica = s.data.find(n => n.port !== master)!
      await replica.kill()
      // Every exchange's WAIT now falls short: the enqueue side is told, the tasks still run.
      let refused: unknown
      await caller
        .queue()
        .run('refused')
        .catch((err: unknown) => (refused = err))
      expect(refused).to.be.instanceOf(ReplicationTimeout)
      await pool.start()
      const values = await Promise.all(calls.map(d => d.result(20_000)))
      expect(values).to.deep.equal(ids.map(id => `ran ${id}`))
      await othersRan
      const shortfalls = errors.filter(e => e instanceof ReplicationTimeout).length
      expect(shortfalls, 'the pool reported the shortfall').to.be.greaterThan(0)
      // The replica back, calls are confirmed again; a failover then keeps every outcome.
      await replica.start(master)
      const after = await caller.queue().run('after')
      expect(await after.result(20_000)).to.equal('ran after')
      expect(lost, 'leases reported lost').to.deep.equal([])
      await s.failover()
      for (const [i, id] of ids.entries()) {
        expect(runs.get(id), `runs of ${id}`).to.equal(1)
        expect((await caller.task(calls[i]!.id))?.status, id).to.equal('completed')
      }
    } finally {
      await pool.stop()
      await caller.close()
      await worker.close()
    }
  })
})
