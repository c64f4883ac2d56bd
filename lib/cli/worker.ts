/**
 * `worq worker <url> --tasks <module>`: runs the tasks module's TaskSpaces on one queue until told
 * to stop. The first SIGTERM or SIGINT stops taking work and lets running tasks finish within
 * `--shutdown-timeout` (then hands them back); a second one hands them back at once.
 */
import { Command, Option } from 'commander'
import { getBroker } from '../broker.js'
import { WorkerPool } from '../worker/pool.js'
import { ChildProcessExecutor } from '../worker/children/child-executor.js'
import { asTaskSpace, loadTasks } from '../worker/children/tasks-module.js'
import { EXIT, signalExitCode } from './exit-codes.js'
import { logPoolEvents, type Logger } from '../worker/log-events.js'
import { lineLogger, type LogFormat } from './logger.js'
import { integer, modulePath, ms, queueName } from './parse.js'

/** Options of `worq worker`. */
export interface WorkerCommandOptions {
  tasks: string
  queue: string
  concurrency?: number
  lanes?: number
  processes?: number
  maxTasksPerChild?: number
  maxMemoryPerChild?: number
  killGrace: number
  sweepInterval: number
  /** The worker's heartrate: the longest lease renewal period of its tasks. */
  heartrate?: number
  shutdownTimeout: number
  logFormat: LogFormat
  id?: string
  /** False with `--no-task-context`. */
  taskContext: boolean
}

/** Runs a worker until a signal stops it; resolves with the exit code. */
export async function runWorker(
  url: string,
  o: WorkerCommandOptions,
  logger: Logger = lineLogger(o.logFormat),
): Promise<number> {
  const broker = getBroker(url, o.queue)
  let executor: ChildProcessExecutor | undefined
  let names: readonly string[]
  const concurrency = o.concurrency ?? o.processes ?? 10
  if (o.processes) {
    const execArgv = process.execArgv.filter(a => !a.startsWith('--inspect'))
    if (o.maxMemoryPerChild) execArgv.push(`--max-old-space-size=${o.maxMemoryPerChild}`)
    executor = new ChildProcessExecutor({
      tasks: o.tasks,
      processes: o.processes,
      concurrency: Math.ceil(concurrency / o.processes),
      ...(o.maxTasksPerChild && { maxTasksPerChild: o.maxTasksPerChild }),
      killGrace: o.killGrace,
      execArgv,
      taskContext: o.taskContext,
    })
  } else {
    const tasks = await loadTasks(o.tasks)
    broker.expose(asTaskSpace(tasks))
    names = [...tasks.keys()]
  }
  const pool = new WorkerPool(broker, {
    concurrency,
    ...(o.lanes && { lanes: o.lanes }),
    sweepInterval: o.sweepInterval,
    ...(o.heartrate !== undefined && { heartrate: o.heartrate }),
    ...(o.id !== undefined && { id: o.id }),
    ...(executor && { executor }),
    taskContext: o.taskContext,
  })
  logPoolEvents(pool, logger, executor)
  // Listening before the start: a signal while the pool starts (connecting, loading children)
  // stops it gracefully once started, not by the signal's default action.
  const signals = stopOnSignals(pool, o.shutdownTimeout, logger)
  try {
    await pool.start()
  } catch (err) {
    signals.cancel()
    await broker.close().catch(() => undefined)
    throw err
  }
  names = executor ? executor.names : names!
  const lanes = pool.lanes.length
  logger.info(
    {
      event: 'worker:start',
      id: pool.id,
      pid: process.pid,
      queue: o.queue,
      url: redact(url),
      concurrency,
      lanes,
      processes: o.processes ?? 0,
      tasks: names,
    },
    `worker:start ${pool.id} (pid ${process.pid}) on queue ${o.queue} at ${redact(url)}: ` +
      `concurrency ${concurrency}${lanes > 1 ? ` in ${lanes} lanes` : ''}` +
      `${o.processes ? `, ${o.processes} child processes` : ''}, ` +
      `${names.length} tasks (${names.join(', ')})`,
  )
  const signal = await signals.started()
  await broker.close().catch(() => undefined)
  logger.info(
    { event: 'worker:stop', id: pool.id, forced: signal !== undefined },
    `worker:stop ${pool.id}${signal ? ` at once (second ${signal})` : ''}`,
  )
  return signal ? signalExitCode(signal) : EXIT.OK
}

/**
 * Listens for SIGTERM and SIGINT from now on. Once the pool has started (`started()`), the first
 * stops it within `timeout` and a second stops it at once; `started()` resolves once stopped, with
 * the second signal when there was one. A signal that came while the pool started takes effect
 * then; a second one before that exits at once. `cancel()` stops listening (the start failed).
 */
function stopOnSignals(
  pool: WorkerPool,
  timeout: number,
  logger: Logger,
): { started(): Promise<NodeJS.Signals | undefined>; cancel(): void } {
  let early: NodeJS.Signals | undefined
  let onSignal = (signal: NodeJS.Signals) => {
    if (early) process.exit(signalExitCode(signal))
    early = signal
  }
  const listener = (signal: NodeJS.Signals) => onSignal(signal)
  process.on('SIGTERM', listener)
  process.on('SIGINT', listener)
  const started = () =>
    new Promise<NodeJS.Signals | undefined>(resolve => {
      let stopping: Promise<void> | undefined
      let forced: NodeJS.Signals | undefined
      onSignal = (signal: NodeJS.Signals) => {
        if (!stopping) {
          logger.info(
            { event: 'worker:stopping', signal, timeout, running: pool.running },
            `worker:stopping on ${signal}: ${pool.running} running task(s) get ${timeout} ms to finish; send it again to stop at once`,
          )
          stopping = pool.stop({ timeout })
          void stopping.then(() => resolve(forced))
          return
        }
        forced ??= signal
        logger.warn(
          { event: 'worker:stopping', signal, forced: true, running: pool.running },
          `worker:stopping at once on a second ${signal}: ${pool.running} running task(s) are handed back`,
        )
        void pool.stop({ timeout: 0 })
      }
      if (early) onSignal(early)
    })
  return {
    started,
    cancel() {
      process.off('SIGTERM', listener)
      process.off('SIGINT', listener)
    },
  }
}

function redact(url: string): string {
  return url.replace(/\/\/([^@/]*)@/, '//***@')
}

/** The `worker` command. */
export function workerCommand(run: (code: Promise<number>) => void): Command {
  return new Command('worker')
    .description(
      'Run the TaskSpaces a module exports on one queue until SIGTERM or SIGINT (a second signal stops at once).',
    )
    .argument('<url>', 'backend URL, e.g. redis://127.0.0.1:6379/0')
    .requiredOption(
      '-t, --tasks <module>',
      'path (or file: URL) of the module whose exported TaskSpaces are exposed (ESM or CommonJS)',
      modulePath,
    )
    .option('-q, --queue <name>', 'queue to serve', queueName, 'default')
    .option(
      '-c, --concurrency <n>',
      'tasks run at once (default: --processes when given, else 10)',
      integer(1),
    )
    .option(
      '--lanes <n>',
      'exchange loops of the pool, 1 to 8, at most --concurrency ' +
        '(default: 2 on Redis from concurrency 32, else 1)',
      integer(1),
    )
    .option(
      '-p, --processes <n>',
      'run tasks in this many child processes instead of in the worker process',
      integer(1),
    )
    .option(
      '--max-tasks-per-child <n>',
      'replace a child process after this many tasks (with --processes)',
      integer(1),
    )
    .option(
      '--max-memory-per-child <mb>',
      "a child's V8 heap limit in MB: past it the child dies and its task fails (with --processes)",
      integer(16),
    )
    .option(
      '--kill-grace <ms>',
      'ms past its timeout a task gets to answer before its child process is killed (with --processes)',
      ms(0),
      5_000,
    )
    .option(
      '--sweep-interval <ms>',
      'ms between sweeps for lapsed leases (recovery latency = lease + this)',
      ms(10),
      5_000,
    )
    .option(
      '--heartrate <ms>',
      'ms between lease renewals at most: a task whose own heartrate is longer gets a lease of ' +
        '2 × this + 1 s (recovery latency = lease + --sweep-interval; default: each task its own)',
      ms(10),
    )
    .option(
      '--shutdown-timeout <ms>',
      'ms running tasks get to finish after SIGTERM/SIGINT before they are handed back',
      ms(0),
      10_000,
    )
    .addOption(
      new Option('--log-format <format>', 'log lines as text or JSON')
        .choices(['text', 'json'])
        .default('text'),
    )
    .option('--id <id>', "this worker's id (default: random)")
    .option(
      '--no-task-context',
      'run tasks without their async context: taskContext() throws and tasks read it from `this` ' +
        '(saves the async tracking every promise of the worker pays; docs/worker.md)',
    )
    .addHelpText(
      'after',
      `
A task's heartrate (lease renewal period) is chosen by whoever enqueues it (task option
\`heartrate\`, default 10 s, or \`worq call --heartrate\`); the worker renews each lease at
its task's rate, or at --heartrate when that is shorter.

Exit codes: 0 stopped cleanly, 1 startup error (bad URL, tasks module), 2 usage,
130/143 stopped at once by a second SIGINT/SIGTERM.`,
    )
    .action((url: string, options: WorkerCommandOptions) => run(runWorker(url, options)))
}
