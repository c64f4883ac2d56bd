/**
 * A steady load through one queue while a fault happens (a master killed, a Sentinel failover, a
 * resharding of the queue's slot), and what it cost, counted from three records: the enqueues the
 * caller saw confirmed or refused, every run of every task (counted in the workers' process), and
 * the outcomes the caller's Deferreds delivered.
 *
 * - gone: an enqueue was confirmed, but the task (or its outcome) was not on the new master: the
 *   write died with the old one before it reached a replica (the caller is told TaskExpired);
 * - lost: an enqueue was confirmed, and the caller never heard of the task again;
 * - refused: the enqueue failed and the caller was told (a ReplicationTimeout, or a call that ran
 *   out of retries), so nothing was promised;
 * - ranTwice: a task ran more than once (its reservation or its finish was lost, and the sweep put
 *   it back after its lease);
 * - expired: the caller was told TaskExpired (see {@link FaultCounts.expired});
 * - outcomeLost: a task ran, but its outcome never reached the caller.
 */
import {
  getBroker,
  task,
  TaskExpired,
  TaskSpace,
  WorkerPool,
  type BackendOptions,
} from '../../lib/index.js'
import { uniqueQueue } from './util.js'

const EXPIRED = Symbol('expired')
const GONE = Symbol('gone')

/** What a run under a fault cost. */
export interface FaultCounts {
  sent: number
  confirmed: number
  refused: number
  completed: number
  /**
   * The caller was told TaskExpired: the task's one attempt went to a reservation whose reply was
   * lost with the connection (a handover popped by a BLPOP on the failed master), so its lease
   * lapsed and the sweep expired it. Tasks with `attempts` > 1 run again instead.
   */
  expired: number
  /**
   * The caller was told TaskExpired "the task and its result are gone": the task's record (its
   * confirmed enqueue, or its stored outcome) did not survive the failover.
   */
  gone: number
  /** Confirmed, and the caller heard nothing at all (its Deferred never settled). */
  lost: number
  ranTwice: number
  outcomeLost: number
  /** The longest wait for a batch of enqueues (the caller's view of the outage), ms. */
  longestEnqueueMs: number
  /** Median ms of a confirmed enqueue call (batches of `batch` calls). */
  enqueueP50: number
  /**
   * ms from the fault's end until a whole batch of new calls was confirmed (callers go on), or -1
   * when none was within RECOVERY_MS. Those calls count in `sent` and their tasks in the rest.
   */
  recoveredAfterMs: number
}

/** How long after the fault new calls may keep being refused before the run says so, ms. */
const RECOVERY_MS = 30_000

/** Options of {@link loadThroughFault}. */
export interface LoadOptions {
  url: string
  /** The queue (one is made up when absent). */
  queue?: string
  /** Tasks to send. @default 3000 */
  total?: number
  /** Calls per tick (awaited together). @default 20 */
  batch?: number
  /** Options of the caller's and the workers' brokers (`replicas`). */
  broker?: BackendOptions
  /** Starts the fault once `startAt` tasks were sent; resolves when it is over. */
  fault: () => Promise<void>
  /** @default total / 3 */
  startAt?: number
  /** How long to wait for the last outcomes, ms. @default 30_000 */
  settleMs?: number
}

/** Sends tasks through `queue` while `fault` happens, and counts what was lost or ran twice. */
export async function loadThroughFault(o: LoadOptions): Promise<FaultCounts> {
  const total = o.total ?? 3000
  const batch = o.batch ?? 20
  const queue = o.queue ?? uniqueQueue('fault')
  const runs = new Map<string, number>()
  // Workers and caller on backend instances of their own (another watchdog setting), as in
  // separate processes: outcomes travel over pub/sub, not in the worker's replies.
  const workerBroker = getBroker(o.url, queue, { ...o.broker, watchdog: { pingMs: 1000 } })
  workerBroker.expose(
    new TaskSpace('', {
      run(id: string) {
        runs.set(id, (runs.get(id) ?? 0) + 1)
        return id
      },
    }),
  )
  const pools = [0, 1].map(
    () => new WorkerPool(workerBroker, { concurrency: 8, sweepInterval: 200 }),
  )
  pools.forEach(p => p.on('pool:error', () => undefined))
  await Promise.all(pools.map(p => p.start()))
  const caller = getBroker(o.url, queue, { ...o.broker, watchdog: { pingMs: 2000 } })
  const q = caller.queue()
  const call = task(q.run, { heartrate: 300, resultTimeout: 120_000 })

  const confirmed: Array<{ id: string; result: Promise<unknown> }> = []
  let refused = 0
  let fault: Promise<void> | undefined
  const latencies: number[] = []
  /** Sends calls with these ids at once; how many were confirmed. */
  const send = async (ids: string[]): Promise<number> => {
    const t0 = Date.now()
    const replies = await Promise.allSettled(ids.map(id => call(id).then(d => ({ id, d }))))
    let ok = 0
    for (const r of replies) {
      if (r.status === 'rejected') {
        refused++
        continue
      }
      ok++
      const result = r.value.d
        .result(o.settleMs ?? 30_000)
        .catch((err: unknown) =>
          err instanceof TaskExpired ? (/are gone/.test(err.message) ? GONE : EXPIRED) : undefined,
        )
      confirmed.push({ id: r.value.id, result })
    }
    if (ok > 0) latencies.push(Date.now() - t0)
    return ok
  }
  let sent = 0
  for (; sent < total; sent += batch) {
    if (!fault && sent >= (o.startAt ?? Math.floor(total / 3))) {
      fault = o.fault()
    }
    await send(
      Array.from({ length: Math.min(batch, total - sent) }, (_, k) => `${queue}-${sent + k}`),
    )
  }
  await fault
  sent = total
  // Callers go on: once the fault is over, new calls are confirmed again (on a loaded machine the
  // load above may all have been sent while the fault lasted).
  const over = Date.now()
  let recoveredAfterMs = -1
  while (Date.now() - over < RECOVERY_MS) {
    const ids = Array.from({ length: batch }, (_, k) => `${queue}-after-${sent + k}`)
    sent += batch
    if ((await send(ids)) === batch) {
      recoveredAfterMs = Date.now() - over
      break
    }
    await new Promise(r => setTimeout(r, 100))
  }
  const outcomes = await Promise.all(confirmed.map(c => c.result))
  let completed = 0
  let lost = 0
  let outcomeLost = 0
  let expired = 0
  let gone = 0
  confirmed.forEach((c, i) => {
    if (outcomes[i] === c.id) completed++
    else if (outcomes[i] === EXPIRED) expired++
    else if (outcomes[i] === GONE) gone++
    else if ((runs.get(c.id) ?? 0) > 0) outcomeLost++
    else lost++
  })
  const ranTwice = [...runs.values()].filter(n => n > 1).length
  await Promise.all(pools.map(p => p.stop({ timeout: 5000 })))
  await caller.purge().catch(() => undefined)
  await Promise.all([caller.close(), workerBroker.close()])
  latencies.sort((a, b) => a - b)
  return {
    sent,
    confirmed: confirmed.length,
    refused,
    completed,
    expired,
    gone,
    lost,
    ranTwice,
    outcomeLost,
    longestEnqueueMs: latencies.at(-1) ?? 0,
    enqueueP50: latencies[Math.floor(latencies.length / 2)] ?? 0,
    recoveredAfterMs,
  }
}
