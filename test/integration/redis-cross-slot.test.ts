import { expect } from 'chai'
import { getBroker, TaskSpace, WorkerPool, type Broker } from '../../lib/index.js'
import { connect, type Connection } from '../../lib/backends/redis/connections.js'
import { queueKey } from '../../lib/backends/redis/keys.js'
import { Scripts } from '../../lib/backends/redis/scripts.js'
import { connectionTopology } from '../../lib/backends/redis/topology.js'
import calculateSlot from 'cluster-key-slot'
import { clusterUrl, sharedCluster } from '../helpers/redis-cluster.js'
import { hasBinary, redisUrl } from '../helpers/redis-server.js'
import { uniqueQueue, until } from '../helpers/util.js'

// The two-step hand-over between slots (docs/cluster.md), on one server with `crossSlot: 'split'`
// (the cluster's code path) and on the test cluster. `crossSlot: 'sweep'` leaves every second
// step undone: the state a process leaves when it dies between the two steps.
const cases = [
  { name: 'one server, split', url: redisUrl, options: { crossSlot: 'split' as const } },
  { name: 'cluster', url: clusterUrl, options: {} },
]

const space = () =>
  new TaskSpace('', { func: (x: unknown) => x, add: (a: number, b: number) => a + b })

for (const c of cases) {
  describe(`redis: hand-overs between slots [${c.name}]`, function () {
    let url: string
    let redis: Connection
    before(async function () {
      // Skipped only without redis-server on PATH: no cluster or Sentinel can be started then,
      // and test/helpers/backends.ts reports that as a visible skip with the command to install it.
      if (!hasBinary()) this.skip() // reason: redis-server is not installed
      url = await c.url()
      redis = connect(connectionTopology(url), 'cmd')
    })
    after(() => redis?.disconnect())

    const owed = (queue: string) => redis.hkeys(queueKey(queue, 'ho'))
    const brokers: Broker[] = []
    const pools: WorkerPool[] = []
    const open = (queue: string, options: object = c.options) => {
      const b = getBroker(url, queue, options)
      b.expose(space())
      brokers.push(b)
      return b
    }
    const work = async (b: Broker, sweepInterval = 5000) => {
      const pool = new WorkerPool(b, { concurrency: 2, sweepInterval })
      pools.push(pool)
      await pool.start()
      return pool
    }
    afterEach(async () => {
      await Promise.all(pools.splice(0).map(p => p.stop({ timeout: 2000 })))
      await Promise.all(brokers.splice(0).map(b => b.close()))
    })

    it('a dependent never waits forever when the process that finished its argument dies between the steps', async () => {
      const qa = uniqueQueue('a')
      const qb = uniqueQueue('b')
      await work(open(qb))
      // The finisher: reserves the argument, stores its outcome, and hands nothing over.
      const dying = open(qa, { crossSlot: 'sweep' })
      const arg = await dying.queue().func(20)
      const dep = await open(qb).queue().add(arg, 22)
      const { backend } = await dying.backend()
      const [t] = (await backend.exchange(qa, 'dying', [], 1)).reserved
      expect(t?.id).to.equal(arg.id)
      await backend.exchange(
        qa,
        'dying',
        [{ id: t!.id, token: t!.token, outcome: 'c{"json":20}' }],
        0,
      )
      await dying.close()
      // Step one is stored: the outcome is there, the delivery is owed, the dependent waits.
      expect(await arg.result(1000)).to.equal(20)
      await until(async () => (await owed(qa)).length === 1, 5000, 'the owed delivery')
      expect((await owed(qa))[0]).to.match(new RegExp(`^D\t${arg.id}\t${qb}\t${dep.id}\t0$`))
      expect(await dep.status()).to.equal('pending')
      // Any live worker of the argument's queue sweeps, and finishes the hand-over.
      await work(open(qa), 50)
      expect(await dep.result(10_000)).to.equal(42)
      await until(async () => (await owed(qa)).length === 0, 5000, 'the delivery dropped')
    })

    it('a dependent never waits forever when its enqueuer dies before registering it on the argument', async () => {
      const qa = uniqueQueue('a')
      const qb = uniqueQueue('b')
      const arg = await open(qa).queue().func(1)
      // The enqueuer stores the dependent and owes the link, then dies.
      const dying = open(qb, { crossSlot: 'sweep' })
      const dep = await dying.queue().add(arg, 2)
      await dying.close()
      expect(await owed(qb)).to.deep.equal([`L\t${dep.id}\t0`])
      expect(await redis.hget(queueKey(qa, 'dependents'), arg.id)).to.equal(null)
      // The dependent's queue sweeps: the link is made; the argument then runs and delivers.
      await work(open(qb), 50)
      await until(async () => (await owed(qb)).length === 0, 5000, 'the link made')
      expect(await redis.hget(queueKey(qa, 'dependents'), arg.id)).to.match(
        new RegExp(`^${qb}\t${dep.id}\t0\t`),
      )
      // The enqueuer is gone, so nobody waits on its Deferred: another broker reads the task.
      await work(open(qa))
      const reader = open(qb)
      await until(async () => (await reader.task(dep.id))?.status === 'completed', 10_000)
      expect((await reader.task(dep.id))?.value).to.equal(3)
    })

    if (c.name === 'cluster')
      it("the tests' queues spread over the three masters, so their graphs cross masters", async () => {
        const cluster = await sharedCluster()
        const owners = new Set<number>()
        for (let i = 0; i < 30; i++) {
          const slot = calculateSlot(queueKey(uniqueQueue(), 'conf'))
          owners.add((await cluster.ownerOf(slot)).port)
        }
        expect(owners.size).to.equal(3)
      })

    it('a hand-over done twice counts once (a sweep that redoes what its caller finished)', async () => {
      const qa = uniqueQueue('a')
      const qb = uniqueQueue('b')
      const b = open(qb)
      const x = await open(qa).queue().func(1)
      const y = await open(qa).queue().func(2)
      const dep = await b.queue().add(x, y)
      const scripts = new Scripts(redis, true, undefined, true)
      const gen = (await redis.get(queueKey(qb, `t:${dep.id}`)))!.match(/"g":"([^"]*)"/)![1]!
      const fill = { id: dep.id, slot: '0', generation: gen, outcome: 'c{"json":1}' }
      await scripts.fill(qb, '', [fill], [])
      await scripts.fill(qb, '', [fill], [])
      // One of two arguments is in: the dependent still waits for the other.
      expect(await redis.hget(queueKey(qb, `s:${dep.id}`), 'm')).to.equal('1')
      expect(await dep.status()).to.equal('pending')
      await scripts.fill(qb, '', [{ ...fill, slot: '1', outcome: 'c{"json":2}' }], [])
      await work(b)
      expect(await dep.result(10_000)).to.equal(3)
    })
  })
}
