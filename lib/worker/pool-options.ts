/**
 * WorkerPool options: their documentation, defaults and checks, and the executor they choose.
 */
import { nanoid } from 'nanoid'
import type { Broker } from '../broker.js'
import { ChildProcessExecutor } from './children/child-executor.js'
import { checkDuration } from './durations.js'
import { makeRunner } from './execute.js'
import { InProcessExecutor, type Executor } from './executor.js'
import { checkCount, MAX_CONCURRENCY, MAX_PREFETCH, MAX_PROCESSES } from './maxima.js'

/** Options of a WorkerPool. */
export interface WorkerPoolOptions {
  /**
   * Tasks run at once: an integer from 1 to 10 000. Each running task's lease is renewed from this
   * event loop, 1 000 renewals a second at 10 000 and the default heartrate: past that, run more
   * pools (docs/worker.md, "Sizing concurrency and processes").
   * @default 10, or `processes` when that is set
   */
  concurrency?: number
  /**
   * ms between sweeps for lapsed leases (shared by all workers of the queue): from 10 to 2^31 − 1.
   * @default 5_000
   */
  sweepInterval?: number
  /** Longest single blocking wait for work, in ms: from 10 to 2^31 − 1. @default 5_000 */
  blockTimeout?: number
  /**
   * The worker's heartrate, ms: the longest lease renewal period of any task this pool runs. A
   * task whose own `heartrate` is longer is renewed every `heartrate` ms instead, and its lease is
   * cut to `2 × heartrate + 1 s` by a renewal before it starts (one more backend round
   * trip per batch of such tasks), so that a worker that dies is recovered from sooner. A task
   * with a shorter heartrate keeps its own. A number of ms from 10 to 2^31 − 1 (as the task option).
   * @default none: each task's own heartrate (task option, default 10 s)
   */
  heartrate?: number
  /**
   * This worker's id (part of every fencing token, shown by `worq info` and in events): 1 to 64
   * characters, none of them `|` or a control character. @default a random id
   */
  id?: string
  /**
   * What runs the tasks. @default the broker's exposed functions, on this event loop
   * @internal the child-process executor plugs in here
   */
  executor?: Executor
  /**
   * Run tasks in this many child processes instead of on this event loop (see docs/worker.md):
   * a task that crashes, blocks or leaks only takes its child down, and leases are renewed here.
   * Each child loads `tasks` itself and runs up to `ceil(concurrency / processes)` tasks at once.
   * An integer from 1 to 256 (256 children are 8–13 GB; the same maximum on every host).
   * @default none: tasks run in this process
   */
  processes?: number
  /** With `processes`: the tasks module each child loads (a path or file: URL); its TaskSpaces are exposed. */
  tasks?: string | URL
  /**
   * With `processes`: tasks a child runs before it is replaced by a fresh one, an integer from 1
   * to 2^53 − 1 (past it a child's count of runs is no longer exact), or Infinity.
   * @default Infinity
   */
  maxTasksPerChild?: number
  /**
   * With `processes`: ms a child gets past a task's `timeout` to answer before it is killed (and
   * replaced), as the CLI's `--kill-grace`: from 0 to 2^31 − 1. @default 5000
   */
  killGrace?: number
  /**
   * Tasks reserved ahead of free slots, so the next task starts the moment one ends and each
   * backend round trip carries more work. The pool prefetches only while its recent tasks are
   * short (under 5 ms on average), so long or blocking tasks still spread over every worker. A
   * prefetched task is `processing` (its lease is renewed) but has not started; at stop it is
   * released, first in line, its attempt uncounted. 0 takes a task only when a slot is free. An
   * integer from 0 to 10 000, the most `concurrency` takes (a prefetched task's lease is renewed
   * as a running one's is).
   * @default concurrency, and at least 16
   */
  prefetch?: number
  /**
   * Exchange loops (lanes) the pool runs, each with its share of `concurrency` and `prefetch`.
   * Towards the backend each lane is a worker of its own: the first has the pool's `id`, lane n
   * (from 1) `<id>/<n>`, shown as `workerId` by `TaskInfo`, events and the run's context. On Redis
   * two lanes keep a busy pool's waves of calls out of phase, so this process works on one lane's
   * tasks while Redis runs the other's exchange (docs/worker.md, "Lanes"). An integer from 1 to 8,
   * at most `concurrency`.
   * @default 2 on Redis when `concurrency` is 32 or more, else 1
   */
  lanes?: number
  /**
   * Run each task in its own async context (an AsyncLocalStorage), so that `taskContext()` works
   * anywhere in the task's flow, after an `await` or in a callback. `false` leaves the context to
   * `this` in the task function (`this.signal`, `this.progress()`, `this.metadata`, …) and
   * `taskContext()` throws: Node then tracks no async context for the pool, which costs every
   * promise of the process some time (about 8 % of a busy worker's Node CPU per task on Redis,
   * docs/worker.md). With `processes`, in the children. @default true
   */
  taskContext?: boolean
}

/** Concurrency from which a pool runs two lanes unless told otherwise. */
const LANES_FROM = 32
/** The most lanes a pool runs. */
const MAX_LANES = 8

/**
 * How many lanes a pool runs: its `lanes` option, else the backend's choice from concurrency
 * LANES_FROM on (`Backend.lanes`), else one.
 */
export function laneCount(
  lanes: number | undefined,
  concurrency: number,
  backendLanes: number | undefined,
): number {
  if (lanes !== undefined) return lanes
  return concurrency >= LANES_FROM ? Math.min(backendLanes ?? 1, MAX_LANES, concurrency) : 1
}

/** The worker ids of a pool's lanes: the pool's own, then `<id>/1`, `<id>/2`, … */
export function laneIds(id: string, lanes: number): string[] {
  return Array.from({ length: lanes }, (_, i) => (i === 0 ? id : `${id}/${i}`))
}

/** Options of `stop`. */
export interface StopOptions {
  /**
   * ms to let running tasks finish; then they are handed back (attempts left) or expired. A number
   * from 0 to 2^31 − 1, or `Infinity` to wait for them however long they take (a later
   * `stop({ timeout: 0 })` still hands them back at once). @default 10_000
   */
  timeout?: number
}

/** The `timeout` of stop()'s options, checked (a TypeError names it). */
export function stopTimeout(options: StopOptions | undefined): number {
  const { timeout = 10_000 } = options ?? {}
  if (timeout === Infinity) return timeout
  return checkDuration('timeout', timeout, 0, ', or Infinity to wait for running tasks')
}

/** Options after defaults and checks. */
export interface ResolvedPoolOptions {
  id: string
  concurrency: number
  prefetch: number
  /** Unset: the backend's choice (`laneCount`). */
  lanes: number | undefined
  sweepInterval: number
  blockTimeout: number
  /** Unset: each task's own. */
  heartrate: number | undefined
  executor: Executor
}

/** Fills in defaults and checks a pool's options; throws a TypeError that names a bad one. */
export function resolvePoolOptions(
  broker: Broker,
  options: WorkerPoolOptions,
): ResolvedPoolOptions {
  const {
    processes,
    concurrency = processes ?? 10,
    sweepInterval = 5_000,
    blockTimeout = 5_000,
    id = nanoid(10),
    executor,
    prefetch = Math.max(16, concurrency),
    lanes,
    taskContext = true,
    heartrate,
  } = options
  if (typeof id !== 'string' || !/^[^|\p{Cc}]{1,64}$/u.test(id))
    throw new TypeError(
      `Expected \`id\` to be 1 to 64 characters without \`|\` or control characters, got ${JSON.stringify(id)}`,
    )
  if (processes !== undefined) checkCount('processes', processes, MAX_PROCESSES)
  checkCount('concurrency', concurrency, MAX_CONCURRENCY)
  checkCount('prefetch', prefetch, MAX_PREFETCH, 0)
  if (
    lanes !== undefined &&
    (!Number.isInteger(lanes) || lanes < 1 || lanes > MAX_LANES || lanes > concurrency)
  )
    throw new TypeError(
      `Expected \`lanes\` to be an integer from 1 to ${MAX_LANES} and at most ` +
        `\`concurrency\` (${concurrency}), got ${String(lanes)}`,
    )
  if (typeof taskContext !== 'boolean')
    throw new TypeError(`Expected \`taskContext\` to be true or false, got ${String(taskContext)}`)
  checkDuration('sweepInterval', sweepInterval, 10)
  checkDuration('blockTimeout', blockTimeout, 10)
  if (heartrate !== undefined) checkDuration('heartrate', heartrate, 10)
  return {
    id,
    concurrency,
    prefetch,
    lanes,
    sweepInterval,
    blockTimeout,
    heartrate,
    executor:
      executor ??
      (processes === undefined
        ? new InProcessExecutor(makeRunner(name => broker.lookup(name), taskContext))
        : childExecutor(processes, concurrency, options)),
  }
}

/** Checks an integer option from 1 to `max` (a TypeError names it, its range and the value). */
function childExecutor(processes: number, concurrency: number, o: WorkerPoolOptions): Executor {
  if (o.tasks === undefined)
    throw new TypeError('Expected `tasks` (the path of the tasks module) with `processes`')
  const perChild = Math.ceil(concurrency / processes)
  return new ChildProcessExecutor({
    tasks: o.tasks,
    processes,
    concurrency: perChild,
    ...(o.maxTasksPerChild !== undefined && { maxTasksPerChild: o.maxTasksPerChild }),
    ...(o.killGrace !== undefined && { killGrace: o.killGrace }),
    taskContext: o.taskContext,
  })
}
