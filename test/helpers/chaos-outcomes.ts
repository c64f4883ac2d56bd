/**
 * Counts, from the wire, every outcome Redis records for a queue: the scripts that end a task
 * publish its outcome (`worq:out:<client>`, a JSON array `[queue, id, outcome, …]`) in the same
 * atomic step that stores it, so one published outcome per task id is one recorded result. A
 * result stored twice (a fencing failure) shows as a count of 2. The watcher uses its own
 * connection, so killing worker or producer connections does not blind it.
 *
 * A script returns the outcomes of tasks its own caller enqueued in its reply instead of
 * publishing them: watch only where producer and worker are different backend instances (other
 * processes, or brokers opened with their own `watchdog` or `redis` options).
 */
import { Redis } from 'ioredis'

/** What a watcher saw. */
export interface OutcomeWatch {
  /** Outcomes seen per task id (only the watched queue). */
  readonly counts: Map<string, number>
  /** The last outcome string seen per task id. */
  readonly last: Map<string, string>
  /** Ids with more than one recorded outcome. */
  duplicates(): string[]
  /** Outcomes seen in all. */
  total(): number
  /** Resolves once `n` distinct ids have an outcome, or rejects after `ms`. */
  seen(n: number, ms: number): Promise<void>
  close(): void
}

/** Starts watching the outcomes of `queue` on the Redis at `url`. */
export async function watchOutcomes(url: string, queue: string): Promise<OutcomeWatch> {
  // On a cluster, any node: the cluster bus carries every PUBLISH to every node.
  const seed = /^rediss?-cluster:\/\/(?:[^@/]*@)?([^,/?]+)/.exec(url)?.[1]
  const sub = new Redis(seed ? `redis://${seed}` : url, { connectionName: 'test:outcome-watch' })
  sub.on('error', () => undefined)
  const counts = new Map<string, number>()
  const last = new Map<string, string>()
  let total = 0
  const waiters = new Set<{ n: number; resolve: () => void }>()
  sub.on('pmessage', (_pattern: string, _channel: string, message: string) => {
    const box = JSON.parse(message) as string[]
    for (let i = 0; i + 2 < box.length; i += 3) {
      if (box[i] !== queue) continue
      const id = box[i + 1]!
      counts.set(id, (counts.get(id) ?? 0) + 1)
      last.set(id, box[i + 2]!)
      total++
    }
    for (const w of waiters) {
      if (counts.size < w.n) continue
      waiters.delete(w)
      w.resolve()
    }
  })
  await sub.psubscribe('worq:out:*')
  return {
    counts,
    last,
    duplicates: () => [...counts].filter(([, n]) => n > 1).map(([id]) => id),
    total: () => total,
    seen(n, ms) {
      if (counts.size >= n) return Promise.resolve()
      return new Promise((resolve, reject) => {
        const w = { n, resolve: () => (clearTimeout(timer), resolve()) }
        const timer = setTimeout(() => {
          waiters.delete(w)
          reject(new Error(`saw outcomes of ${counts.size} tasks within ${ms} ms, expected ${n}`))
        }, ms)
        waiters.add(w)
      })
    },
    close: () => sub.disconnect(),
  }
}

/** Counts the keys of `queue` with SCAN (never KEYS). */
export async function queueKeys(redis: Redis, queue: string): Promise<string[]> {
  const found: string[] = []
  let cursor = '0'
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `worq:{${queue}}:*`, 'COUNT', 1000)
    found.push(...keys)
    cursor = next
  } while (cursor !== '0')
  return found
}

/**
 * The keys of a queue that belong to its tasks: all of them but what the queue observed (its
 * event stream and counter, its per-minute metrics: queue-level keys that expire by themselves).
 */
export async function taskKeys(redis: Redis, queue: string): Promise<string[]> {
  return (await queueKeys(redis, queue)).filter(k => !/:(ev|evn|mt|m:\d+)$/.test(k))
}
