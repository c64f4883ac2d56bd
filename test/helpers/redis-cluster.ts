/**
 * A private Redis Cluster for tests: three masters and three replicas (`redis-server
 * --cluster-enabled yes` on free loopback ports, each in a temporary directory, joined with
 * `redis-cli --cluster create --cluster-replicas 1 --cluster-yes`), stopped at process exit.
 * Failover is quick (node timeout 1.5 s) so tests that kill a master do not wait long.
 */
import { execFile } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { Redis } from 'ioredis'
import {
  dirs,
  freePort,
  hasBinary,
  helperRedis,
  INSTALL,
  isFree,
  launch,
  onNode,
  terminate,
} from './redis-server.js'

const run = promisify(execFile)

/** The cluster's node timeout (ms): how soon a dead master is failed over. */
export const NODE_TIMEOUT_MS = 1500

/** One node of a test cluster. */
export interface ClusterNode {
  port: number
  /** `127.0.0.1:<port>`. */
  address: string
  /** True while its process runs. */
  readonly running: boolean
  /** Kills the process (SIGKILL by default: a crash). */
  kill(signal?: NodeJS.Signals): Promise<void>
  /** Starts it again on the same port and directory (it rejoins from its nodes.conf). */
  start(): Promise<void>
  /** A new connection to this node alone. */
  connect(): Redis
}

/** A running test cluster. */
export interface RedisCluster {
  /** `redis-cluster://127.0.0.1:<p1>,127.0.0.1:<p2>,127.0.0.1:<p3>`. */
  url: string
  nodes: ClusterNode[]
  /** The nodes that are masters now (asked of a live node). */
  masters(): Promise<ClusterNode[]>
  /** The node that serves `slot` now. */
  ownerOf(slot: number): Promise<ClusterNode>
  /**
   * Resolves once a live node says that a node other than `port` serves `slot`: the replica of a
   * killed master took over. (A master without persistence that restarts before that comes back
   * empty, and its replica copies the empty data set: wait for this before restarting it.)
   */
  failedOver(slot: number, port: number, timeoutMs?: number): Promise<ClusterNode>
  /** Resolves once every live node says cluster_state:ok and agrees on who serves each slot. */
  settled(timeoutMs?: number): Promise<void>
  /** Resolves once every master has a replica linked and in sync (what `replicas: 1` needs). */
  replicasOnline(timeoutMs?: number): Promise<void>
  /** `redis-cli` with these arguments; resolves with its output. */
  cli(...args: string[]): Promise<string>
  stop(): Promise<void>
}

function info(port: number, section: string, password?: string): Promise<string> {
  return onNode(port, r => (section === 'cluster' ? r.cluster('INFO') : r.info(section)), password)
}

/** Who serves each slot range, as one node sees it: `start-end:port` joined. */
function slotMap(port: number, password?: string): Promise<string> {
  return onNode(
    port,
    async r => {
      const slots = (await r.cluster('SLOTS')) as unknown as Array<
        [number, number, [string, number]]
      >
      return slots
        .map(([a, b, [, p]]) => `${a}-${b}:${p}`)
        .sort()
        .join(',')
    },
    password,
  )
}

/** How to start a test cluster. */
export interface ClusterOptions {
  /**
   * Every node's password (`--requirepass`, and `--masterauth` for its replication): the helper's
   * own connections and `redis-cli` give it; a URL must carry it (`url` does not).
   */
  password?: string
}

/**
 * Starts a 3-master, 3-replica cluster. Throws, saying how to install it, when redis-server is
 * missing.
 */
export async function startCluster(options: ClusterOptions = {}): Promise<RedisCluster> {
  const { password } = options
  const auth = password === undefined ? [] : ['--requirepass', password, '--masterauth', password]
  const cliAuth = password === undefined ? [] : ['-a', password, '--no-auth-warning']
  if (!hasBinary()) throw new Error(INSTALL)
  const root = mkdtempSync(join(tmpdir(), 'worq-cluster-'))
  dirs.add(root)
  const ports: number[] = []
  const taken = (p: number) => ports.some(q => q === p || q + 10000 === p || q === p + 10000)
  while (ports.length < 6) {
    const p = await freePort()
    // The cluster bus listens on port + 10000: keep both free (another process on the bus port
    // makes the node exit at its start) and distinct from the other nodes' ports and buses.
    if (p + 10000 < 65536 && !taken(p) && (await isFree(p + 10000))) ports.push(p)
  }
  const children = new Map<number, ChildProcess>()
  const start = async (port: number) => {
    const dir = join(root, String(port))
    mkdirSync(dir, { recursive: true })
    children.set(
      port,
      await launch(port, dir, {
        args: [
          '--cluster-enabled',
          'yes',
          '--cluster-config-file',
          'nodes.conf',
          '--cluster-node-timeout',
          String(NODE_TIMEOUT_MS),
          // A master whose replica was promoted while it was away comes back as a replica.
          '--cluster-replica-validity-factor',
          '0',
          ...auth,
        ],
      }),
    )
  }
  await Promise.all(ports.map(start))
  const cli = async (...args: string[]) => (await run('redis-cli', [...cliAuth, ...args])).stdout
  await cli(
    '--cluster',
    'create',
    ...ports.map(p => `127.0.0.1:${p}`),
    '--cluster-replicas',
    '1',
    '--cluster-yes',
  )
  const nodes: ClusterNode[] = ports.map(port => ({
    port,
    address: `127.0.0.1:${port}`,
    get running() {
      const c = children.get(port)
      return c !== undefined && c.exitCode === null && c.signalCode === null
    },
    async kill(signal: NodeJS.Signals = 'SIGKILL') {
      const c = children.get(port)
      if (c) await terminate(c, signal)
    },
    start: () => start(port),
    connect: () => helperRedis({ port, host: '127.0.0.1', password }),
  }))
  const live = () => nodes.filter(n => n.running)
  const cluster: RedisCluster = {
    url: `redis-cluster://${ports
      .slice(0, 3)
      .map(p => `127.0.0.1:${p}`)
      .join(',')}`,
    nodes,
    async masters() {
      const out: ClusterNode[] = []
      for (const n of live()) {
        const role = /^role:(\w+)/m.exec(await info(n.port, 'replication', password))?.[1]
        if (role === 'master') out.push(n)
      }
      return out
    },
    async ownerOf(slot) {
      const r = helperRedis({ port: live()[0]!.port, host: '127.0.0.1', password })
      try {
        const slots = (await r.cluster('SLOTS')) as unknown as Array<
          [number, number, [string, number]]
        >
        const hit = slots.find(([a, b]) => a <= slot && slot <= b)
        if (!hit) throw new Error(`no node serves slot ${slot}`)
        return nodes.find(n => n.port === hit[2][1])!
      } finally {
        r.disconnect()
      }
    },
    async failedOver(slot, port, timeoutMs = 30_000) {
      const until = Date.now() + timeoutMs
      for (;;) {
        const owner = await cluster.ownerOf(slot).catch(() => undefined)
        if (owner && owner.port !== port && owner.running) return owner
        if (Date.now() > until) throw new Error(`slot ${slot} was not failed over in time`)
        await new Promise(r => setTimeout(r, 100))
      }
    },
    async settled(timeoutMs = 30_000) {
      const until = Date.now() + timeoutMs
      for (;;) {
        try {
          const states = await Promise.all(live().map(n => info(n.port, 'cluster', password)))
          const maps = await Promise.all(live().map(n => slotMap(n.port, password)))
          const ok = states.every(s => /cluster_state:ok/.test(s))
          const agree = maps.every(m => m === maps[0])
          const served = maps[0] !== undefined && maps[0].split(',').length > 0
          if (ok && agree && served) return
        } catch {
          // a node still starting: ask again
        }
        if (Date.now() > until) throw new Error('the test cluster did not settle in time')
        await new Promise(r => setTimeout(r, 100))
      }
    },
    async replicasOnline(timeoutMs = 30_000) {
      const until = Date.now() + timeoutMs
      for (;;) {
        const masters = await cluster.masters().catch(() => [])
        const infos = await Promise.all(
          masters.map(m => info(m.port, 'replication', password).catch(() => '')),
        )
        if (masters.length > 0 && infos.every(i => /^slave0:.*state=online/m.test(i))) return
        if (Date.now() > until) throw new Error("the test cluster's replicas did not come online")
        await new Promise(r => setTimeout(r, 100))
      }
    },
    cli,
    async stop() {
      await Promise.all(nodes.map(n => n.kill('SIGTERM')))
      rmSync(root, { recursive: true, force: true })
      dirs.delete(root)
    },
  }
  await cluster.settled()
  return cluster
}

let shared: Promise<RedisCluster> | undefined

/** The cluster the whole test run shares, started on first use and stopped at exit. */
export function sharedCluster(): Promise<RedisCluster> {
  shared ??= startCluster()
  return shared
}

/** The URL of the shared test cluster. */
export async function clusterUrl(): Promise<string> {
  return (await sharedCluster()).url
}
