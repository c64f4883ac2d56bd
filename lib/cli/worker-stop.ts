/**
 * How `worq worker` is told to stop: SIGTERM or SIGINT, or its stdout closing (EPIPE: the reader
 * of its pipe went away, as in `worq worker | head -n 1`). The first request stops it gracefully:
 * nothing new starts, running tasks get the shutdown timeout, then are handed back. A second
 * signal stops it at once. Listening starts before anything else (loading the tasks module,
 * connecting), so a request that comes meanwhile takes effect as soon as it can, never the
 * signal's default action.
 */
import type { Logger } from '../worker/log-events.js'
import type { WorkerPool } from '../worker/pool.js'
import { signalExitCode } from './exit-codes.js'

/** What asked the worker to stop: a signal, or `'stdout'` (it closed). */
export type StopCause = NodeJS.Signals | 'stdout'

/** The worker's stop requests. */
export interface StopControl {
  /** The first request so far. */
  readonly requested: StopCause | undefined
  /** Asks for a stop (a second signal: at once). */
  request(cause: StopCause): void
  /**
   * The pool has started: a stop asked for already begins now. Resolves once the pool stopped,
   * with the signal that stopped it at once, if one did.
   */
  run(pool: WorkerPool): Promise<NodeJS.Signals | undefined>
  /** Stops listening for signals. */
  dispose(): void
}

const SIGNALS = ['SIGTERM', 'SIGINT'] as const

/** Listens for SIGTERM and SIGINT from now on; `timeout` is the graceful stop's, in ms. */
export function stopControl(timeout: number, logger: Logger): StopControl {
  let first: StopCause | undefined
  let pool: WorkerPool | undefined
  let forced: NodeJS.Signals | undefined
  let settle: { resolve(s: NodeJS.Signals | undefined): void; reject(e: unknown): void }
  const stopped = new Promise<NodeJS.Signals | undefined>((resolve, reject) => {
    settle = { resolve, reject }
  })
  const begin = (p: WorkerPool) =>
    void p.stop({ timeout }).then(() => settle.resolve(forced), settle.reject)
  const request = (cause: StopCause) => {
    if (first === undefined) {
      first = cause
      const why = cause === 'stdout' ? 'as its stdout closed' : `on ${cause}`
      const again = cause === 'stdout' ? 'send SIGTERM' : 'send it again'
      const fields = { event: 'worker:stopping', signal: cause, timeout }
      if (pool) {
        logger.info(
          { ...fields, running: pool.running },
          `worker:stopping ${why}: ${pool.running} running task(s) get ${timeout} ms to finish; ${again} to stop at once`,
        )
        begin(pool)
      } else {
        logger.info(
          { ...fields, starting: true },
          `worker:stopping ${why} while starting: it stops once it can; ${again} to stop at once`,
        )
      }
      return
    }
    if (cause === 'stdout') return
    if (!pool) {
      // Still starting (a tasks module's top-level await cannot be interrupted): nothing runs yet.
      logger.warn(
        { event: 'worker:stop', forced: true, signal: cause },
        `worker:stop at once (second ${cause}) while starting`,
      )
      process.exit(signalExitCode(cause))
    }
    forced ??= cause
    logger.warn(
      { event: 'worker:stopping', signal: cause, forced: true, running: pool.running },
      `worker:stopping at once on a second ${cause}: ${pool.running} running task(s) are handed back`,
    )
    void pool.stop({ timeout: 0 })
  }
  const listener = (signal: NodeJS.Signals) => request(signal)
  for (const s of SIGNALS) process.on(s, listener)
  return {
    get requested() {
      return first
    },
    request,
    run(p) {
      pool = p
      if (first !== undefined) begin(p)
      return stopped
    },
    dispose() {
      for (const s of SIGNALS) process.off(s, listener)
    },
  }
}
