import { clusterUrl } from './redis-cluster.js'
import { postgresUrl } from './postgres.js'
import { hasBinary, redisUrl } from './redis-server.js'
import { sentinelUrl } from './redis-sentinel.js'

/**
 * The backend URLs the contract suite runs against: memory:// always, a private Redis, a private
 * Redis Cluster (3 masters, 3 replicas: the suite's queues spread over the masters), a private
 * Sentinel set (1 master, 1 replica, 3 sentinels) and a private PostgreSQL database (postgres.ts:
 * created on 127.0.0.1:5432 and dropped after the run, or DATABASE_URL). `WORQ_BACKENDS=memory,redis`
 * picks some of them (`npm run test:cluster` runs cluster and sentinel).
 */
export interface BackendCase {
  name: string
  url: () => Promise<string>
}

const all: BackendCase[] = [
  { name: 'memory', url: async () => 'memory://' },
  { name: 'redis', url: redisUrl },
  { name: 'cluster', url: clusterUrl },
  { name: 'sentinel', url: sentinelUrl },
  { name: 'postgres', url: postgresUrl },
]

/** The cases that need servers started with redis-server (the cluster and sentinels do). */
const SPAWNED = ['cluster', 'sentinel']

const only = process.env.WORQ_BACKENDS?.split(',').map(s => s.trim())
const picked = only ? all.filter(b => only.includes(b.name)) : all

/** True where the cluster and sentinel servers can be started. */
const canSpawn = hasBinary()
if (!canSpawn && picked.some(b => SPAWNED.includes(b.name)))
  describe('contract on Redis Cluster and Sentinel', () => {
    // A visible skip where the machine cannot start servers: the tests that need them are left
    // out of the matrix below, and this test says why in the report.
    it('redis-server is not on PATH: apt-get install redis-server', function () {
      this.skip() // reason: redis-server is not on PATH, so no Cluster or Sentinel can be started
    })
  })

export const backends: BackendCase[] = picked.filter(b => canSpawn || !SPAWNED.includes(b.name))
