/**
 * A private Sentinel set for tests: one master, one replica and three sentinels (`redis-server
 * --sentinel`), each on a free loopback port in a temporary directory, stopped at process exit.
 * The sentinels call a master down after 1 s, so failover tests do not wait long.
 */
import type { ChildProcess } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Redis } from 'ioredis'
import { dirs, freePort, hasBinary, INSTALL, launch, onNode, terminate } from './redis-server.js'

/** The master name the sentinels watch. */
export const MASTER_NAME = 'worqmaster'

/** A data node (master or replica) of the set. */
export interface DataNode {
  port: number
  readonly running: boolean
  kill(signal?: NodeJS.Signals): Promise<void>
  /**
   * Starts it again on the same port, as a replica of `master` (the sentinels' current master);
   * resolves once it has synchronised.
   */
  start(master?: number): Promise<void>
}

/** A running Sentinel set. */
export interface SentinelSet {
  /** `redis-sentinel://127.0.0.1:<s1>,127.0.0.1:<s2>,127.0.0.1:<s3>/worqmaster`. */
  url: string
  data: DataNode[]
  sentinels: number[]
  /** The master's port, as the sentinels say now. */
  master(): Promise<number>
  /**
   * `SENTINEL FAILOVER` on the first sentinel; resolves once the sentinels name a new master and
   * the old one has synchronised as its replica.
   */
  failover(timeoutMs?: number): Promise<number>
  /** Resolves once the sentinels name a master other than `port`. */
  masterChangedFrom(port: number, timeoutMs?: number): Promise<number>
  stop(): Promise<void>
}

const ask = onNode

/**
 * Resolves once the replica on `port` has its link to its master up (its first synchronisation
 * done): a set whose replica is still loading cannot fail over to it, so a test that kills the
 * master right after another test restarted a node would measure a set with no good replica.
 */
async function inSync(port: number, timeoutMs = 30_000): Promise<void> {
  const until = Date.now() + timeoutMs
  for (;;) {
    const info = await ask(port, c => c.info('replication')).catch(() => '')
    if (/master_link_status:up/.test(info)) return
    if (Date.now() > until) throw new Error(`the replica on port ${port} did not sync in time`)
    await new Promise(res => setTimeout(res, 50))
  }
}

/** How to start a test Sentinel set. */
export interface SentinelOptions {
  /**
   * The sentinels' own password (`requirepass` in their config; they give it to each other too):
   * the helper's own connections to them give it; a URL must carry it (`url` does not).
   */
  sentinelPassword?: string
}

/** Starts the set and waits until every sentinel knows the replica and the other sentinels. */
export async function startSentinels(options: SentinelOptions = {}): Promise<SentinelSet> {
  const { sentinelPassword } = options
  /** `fn` on a connection to sentinel `port`. */
  const askSentinel = <T>(port: number, fn: (r: Redis) => Promise<T>) =>
    ask(port, fn, sentinelPassword)
  if (!hasBinary()) throw new Error(INSTALL)
  const root = mkdtempSync(join(tmpdir(), 'worq-sentinel-'))
  dirs.add(root)
  const ports: number[] = []
  while (ports.length < 5) {
    const p = await freePort()
    if (!ports.includes(p)) ports.push(p)
  }
  const [m, r, ...sentinels] = ports as [number, number, number, number, number]
  const children = new Map<number, ChildProcess>()
  const startData = async (port: number, master?: number) => {
    const dir = join(root, String(port))
    mkdirSync(dir, { recursive: true })
    // A full resynchronisation starts at once: Redis 7 waits 5 s by default for more replicas to
    // share the transfer, and a failover test with `replicas: 1` waits for that replica.
    const args = ['--repl-diskless-sync-delay', '0']
    if (master) args.push('--replicaof', '127.0.0.1', String(master))
    children.set(port, await launch(port, dir, { args }))
    if (master) await inSync(port)
  }
  await startData(m)
  await startData(r, m)
  await Promise.all(
    sentinels.map(async port => {
      const dir = join(root, String(port))
      mkdirSync(dir, { recursive: true })
      writeFileSync(
        join(dir, 'sentinel.conf'),
        [
          `sentinel monitor ${MASTER_NAME} 127.0.0.1 ${m} 2`,
          `sentinel down-after-milliseconds ${MASTER_NAME} 1000`,
          `sentinel failover-timeout ${MASTER_NAME} 4000`,
          `sentinel parallel-syncs ${MASTER_NAME} 1`,
          ...(sentinelPassword === undefined ? [] : [`requirepass ${sentinelPassword}`]),
          '',
        ].join('\n'),
      )
      children.set(port, await launch(port, dir, { sentinel: 'sentinel.conf' }))
    }),
  )
  const master = () =>
    askSentinel(sentinels[0], async c => {
      const [, port] = (await c.call('SENTINEL', 'get-master-addr-by-name', MASTER_NAME)) as [
        string,
        string,
      ]
      return Number(port)
    })
  const masterChangedFrom = async (port: number, timeoutMs = 30_000) => {
    const until = Date.now() + timeoutMs
    for (;;) {
      const now = await Promise.all(
        sentinels.map(s =>
          askSentinel(s, async c => {
            const a = (await c.call('SENTINEL', 'get-master-addr-by-name', MASTER_NAME)) as string[]
            return Number(a[1])
          }).catch(() => port),
        ),
      )
      if (now.every(p => p !== port && p === now[0])) return now[0]!
      if (Date.now() > until) throw new Error('the sentinels did not fail over in time')
      await new Promise(res => setTimeout(res, 100))
    }
  }
  // Ready for a failover: every sentinel sees the replica and the two other sentinels.
  const until = Date.now() + 30_000
  for (;;) {
    const ready = await Promise.all(
      sentinels.map(s =>
        askSentinel(s, async c => {
          const flat = (await c.call('SENTINEL', 'master', MASTER_NAME)) as string[]
          const field = (k: string) => flat[flat.indexOf(k) + 1]
          return field('num-slaves') === '1' && field('num-other-sentinels') === '2'
        }).catch(() => false),
      ),
    )
    if (ready.every(Boolean)) break
    if (Date.now() > until) throw new Error('the test sentinels did not find each other in time')
    await new Promise(res => setTimeout(res, 100))
  }
  const data: DataNode[] = [m, r].map(port => ({
    port,
    get running() {
      const c = children.get(port)
      return c !== undefined && c.exitCode === null && c.signalCode === null
    },
    async kill(signal: NodeJS.Signals = 'SIGKILL') {
      const c = children.get(port)
      if (c) await terminate(c, signal)
    },
    start: (master?: number) => startData(port, master),
  }))
  return {
    url: `redis-sentinel://${sentinels.map(p => `127.0.0.1:${p}`).join(',')}/${MASTER_NAME}`,
    data,
    sentinels,
    master,
    masterChangedFrom,
    async failover(timeoutMs) {
      const before = await master()
      // A replica restarted a moment ago is not a good one to the sentinels until they have pinged
      // it again (NOGOODSLAVE): ask again until they take it.
      const until = Date.now() + (timeoutMs ?? 30_000)
      for (;;) {
        const refused = await askSentinel(sentinels[0], c =>
          c.call('SENTINEL', 'failover', MASTER_NAME),
        )
          .then(() => undefined)
          .catch((err: unknown) => err)
        if (refused === undefined) break
        if (!/NOGOODSLAVE/.test(String(refused)) || Date.now() > until) throw refused
        await new Promise(res => setTimeout(res, 200))
      }
      const now = await masterChangedFrom(before, timeoutMs)
      // The sentinels turn the old master into a replica of the new one: the set is whole again
      // once it has synchronised (the next test may kill the new master).
      await inSync(before)
      return now
    },
    async stop() {
      await Promise.all([...children.values()].map(c => terminate(c)))
      rmSync(root, { recursive: true, force: true })
      dirs.delete(root)
    },
  }
}

let shared: Promise<SentinelSet> | undefined

/** The Sentinel set the whole test run shares, started on first use and stopped at exit. */
export function sharedSentinels(): Promise<SentinelSet> {
  shared ??= startSentinels()
  return shared
}

/** The URL of the shared Sentinel set. */
export async function sentinelUrl(): Promise<string> {
  return (await sharedSentinels()).url
}
