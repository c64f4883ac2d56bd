/**
 * Faults of a Redis Cluster and of a Sentinel set under load (test/helpers/failover-load.ts): a
 * resharding of the queue's slot (`redis-cli --cluster reshard`), a master killed (SIGKILL) and
 * failed over, with and without `replicas: 1`, and a Sentinel failover (SENTINEL FAILOVER and a
 * killed master). Each prints its figures (docs/reliability.md and docs/cluster.md quote them).
 * Each test starts servers of its own, so the shared test cluster is left as it was.
 */
import { expect } from 'chai'
import calculateSlot from 'cluster-key-slot'
import { nanoid } from 'nanoid'
import { loadThroughFault, type FaultCounts } from '../helpers/failover-load.js'
import { startCluster, type RedisCluster } from '../helpers/redis-cluster.js'
import { hasBinary, helperRedis } from '../helpers/redis-server.js'
import { startSentinels, type SentinelSet } from '../helpers/redis-sentinel.js'

const TOTAL = Number(process.env.WORQ_FAULT_TASKS ?? 3000)

/** The node id and slot ranges of each master, as a node sees them. */
async function masterSlots(c: RedisCluster): Promise<Map<number, { id: string; first: number }>> {
  const r = helperRedis(c.nodes.find(n => n.running)!.port)
  try {
    const slots = (await r.cluster('SLOTS')) as unknown as Array<
      [number, number, [string, number, string]]
    >
    const out = new Map<number, { id: string; first: number }>()
    for (const [start, , [, port, id]] of slots) {
      const known = out.get(port)
      if (!known || start < known.first) out.set(port, { id, first: start })
    }
    return out
  } finally {
    r.disconnect()
  }
}

/** A queue name whose slot is the first slot its master serves (what a reshard moves first). */
function queueOnSlot(slot: number): string {
  for (;;) {
    const name = `rs-${nanoid(6)}`
    if (calculateSlot(`worq:{${name}}:conf`) === slot) return name
  }
}

function report(what: string, counts: FaultCounts): void {
  console.log(`      ${what}: ${JSON.stringify(counts)}`)
}

/**
 * Every confirmed task is accounted for: completed, lost, or run without its outcome; and callers
 * went on once the fault was over. (Most confirmed tasks complete: what the fault cost in refused
 * calls depends on how long it lasted, which a loaded machine stretches.)
 */
function accounted(c: FaultCounts): void {
  expect(c.recoveredAfterMs, 'new calls confirmed after the fault').to.be.at.least(0)
  expect(c.completed, 'completed of the confirmed').to.be.greaterThan(c.confirmed / 2)
  expect(c.completed + c.expired + c.gone + c.lost + c.outcomeLost).to.equal(c.confirmed)
  // Nobody is left waiting forever: every confirmed task's caller heard how it ended.
  expect(c.lost, 'lost without a word').to.equal(0)
  expect(c.outcomeLost, 'ran, outcome never delivered').to.equal(0)
  expect(c.confirmed + c.refused).to.equal(c.sent)
}

describe('chaos: Redis Cluster and Sentinel faults under load', function () {
  this.timeout(300_000)
  before(function () {
    // Skipped only without redis-server on PATH: no cluster or Sentinel can be started then, and
    // test/helpers/backends.ts reports that as a visible skip with the command that installs it.
    if (!hasBinary()) this.skip() // reason: redis-server is not installed
  })

  describe('cluster', () => {
    let cluster: RedisCluster
    beforeEach(async () => {
      cluster = await startCluster()
    })
    afterEach(async () => {
      await cluster?.stop()
    })

    for (const replicas of [0, 1])
      it(`a resharding of the queue's slot under load (redis-cli --cluster reshard; replicas: ${replicas}): nothing lost, nothing run twice`, async () => {
        const masters = await masterSlots(cluster)
        const [[fromPort, from], [toPort, to]] = [...masters] as [
          [number, { id: string; first: number }],
          [number, { id: string; first: number }],
        ]
        const queue = queueOnSlot(from.first)
        if (replicas > 0) await cluster.replicasOnline()
        let moved = ''
        const counts = await loadThroughFault({
          url: cluster.url,
          queue,
          total: TOTAL,
          // With replicas: 1 each call is a pipeline with its WAIT, whose MOVED and ASK worq
          // follows itself (ioredis does not for a pipeline).
          broker: { replicas },
          fault: async () => {
            moved = await cluster.cli(
              '--cluster',
              'reshard',
              `127.0.0.1:${fromPort}`,
              '--cluster-from',
              from.id,
              '--cluster-to',
              to.id,
              '--cluster-slots',
              '1',
              '--cluster-yes',
            )
            await cluster.settled()
          },
        })
        report(`reshard of the queue slot (replicas: ${replicas})`, counts)
        expect(moved).to.match(new RegExp(`Moving slot ${from.first} from`))
        expect((await cluster.ownerOf(from.first)).port).to.equal(toPort)
        accounted(counts)
        expect(counts.refused, 'refused').to.equal(0)
        expect(counts.lost, 'lost').to.equal(0)
        expect(counts.outcomeLost, 'outcomes lost').to.equal(0)
        expect(counts.ranTwice, 'ran twice').to.equal(0)
        expect(counts.completed).to.equal(counts.sent)
      })

    for (const replicas of [0, 1]) {
      it(`the queue's master killed mid-run (replicas: ${replicas}): workers and callers go on`, async () => {
        const queue = `kill-${nanoid(6)}`
        const slot = calculateSlot(`worq:{${queue}}:conf`)
        const victim = await cluster.ownerOf(slot)
        const counts = await loadThroughFault({
          url: cluster.url,
          queue,
          total: TOTAL,
          broker: { replicas },
          fault: async () => {
            await victim.kill('SIGKILL')
            // A replica takes over after the node timeout; the old master comes back as a
            // replica of it (what `replicas: 1` then needs to confirm writes again).
            await cluster.failedOver(slot, victim.port)
            await cluster.settled()
            await victim.start()
            await cluster.settled()
          },
        })
        report(`cluster master killed, replicas ${replicas}`, counts)
        expect(victim.running).to.equal(true)
        accounted(counts)
        // Whatever a failover costs, it is bounded by what was in flight at the kill.
        expect(counts.ranTwice, 'ran twice').to.be.at.most(64)
        if (replicas === 1) expect(counts.gone, 'confirmed, then gone').to.equal(0)
      })
    }
  })

  describe('sentinel', () => {
    let set: SentinelSet
    beforeEach(async () => {
      set = await startSentinels()
    })
    afterEach(async () => {
      await set?.stop()
    })

    // Sentinel promotes the replica without waiting for it to catch up: what the old master
    // confirmed after the replica's last acknowledgement is gone unless `replicas: 1` made every
    // confirmation wait for the replica (docs/cluster.md).
    for (const replicas of [0, 1]) {
      it(`SENTINEL FAILOVER mid-run (replicas: ${replicas}): callers and workers follow the new master`, async () => {
        const counts = await loadThroughFault({
          url: set.url,
          total: TOTAL,
          broker: { replicas },
          fault: async () => {
            await set.failover()
          },
        })
        report(`sentinel failover, replicas ${replicas}`, counts)
        accounted(counts)
        if (replicas === 1) expect(counts.gone, 'confirmed, then gone').to.equal(0)
      })
    }

    for (const replicas of [0, 1]) {
      it(`the master killed mid-run (replicas: ${replicas}): callers and workers follow the new master`, async () => {
        const counts = await loadThroughFault({
          url: set.url,
          total: TOTAL,
          broker: { replicas },
          fault: async () => {
            const old = await set.master()
            const node = set.data.find(d => d.port === old)!
            await node.kill('SIGKILL')
            const now = await set.masterChangedFrom(old)
            await node.start(now)
          },
        })
        report(`sentinel master killed, replicas ${replicas}`, counts)
        accounted(counts)
        expect(counts.ranTwice, 'ran twice').to.be.at.most(64)
        if (replicas === 1) expect(counts.gone, 'confirmed, then gone').to.equal(0)
      })
    }
  })
})
