/**
 * `worq worker <url> --tasks <module>`: runs the tasks module's TaskSpaces on one queue until told
 * to stop. The first SIGTERM or SIGINT stops taking work and lets running tasks finish within
 * `--shutdown-timeout` (then hands them back); a second one hands them back at once. Its stdout
 * closing stops it as the first signal does (worker-stop.ts).
 */
import { Command, Option } from 'commander'
import { getBroker, type Broker } from '../broker.js'
import { WorkerPool } from '../worker/pool.js'
import { ChildProcessExecutor } from '../worker/children/child-executor.js'
import { asTaskSpace, loadTasks } from '../worker/children/tasks-module.js'
import { CliExit, EXIT, signalExitCode } from './exit-codes.js'
import { logPoolEvents, type Logger } from '../worker/log-events.js'
import { guardedLines, lineLogger, type LogFormat } from './logger.js'
import { integer, modulePath, ms, queueName } from './parse.js'
import { stopControl } from './worker-stop.js'
import { MAX_CONCURRENCY, MAX_PROCESSES, MAX_TASKS_PER_CHILD } from '../worker/maxima.js'
import { redactUrl } from '../redact-url.js'

/**
 * The largest `--max-memory-per-child`, in MB: 1 TiB, past any host a worker is meant for. Node
 * takes any heap limit (even one past the machine's memory, which is no limit); the bound is there
 * for the likely slip, a size in bytes: 512 MiB given as 536870912 would be 512 TiB.
 */
export const MAX_MEMORY_PER_CHILD_MB = 1_048_576

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

/**
 * Runs a worker until a signal stops it, or its stdout closes; resolves with the exit code. Log
 * lines go to `logger`, by default to stdout, which may close under it (`worq worker | head`):
 * then the worker says so on stderr and stops as on SIGTERM (exit code 1).
 */
export async function runWorker(
  url: string,
  o: WorkerCommandOptions,
  logger?: Logger,
): Promise<number> {
  let closed: Error | undefined
  const stderr = guardedLines(process.stderr)
  const stdout = logger
    ? undefined
    : guardedLines(process.stdout, err => {
        closed = err
        const stopping = stop.requested === undefined
        stderr.write(
          `worq worker: stdout closed (${err.message}), so no more log lines` +
            (stopping
              ? `; stopping as on SIGTERM (running tasks get ${o.shutdownTimeout} ms)\n`
              : '\n'),
        )
        stop.request('stdout')
      })
  const log = logger ?? lineLogger(o.logFormat, line => stdout!.write(line))
  // Listening before anything else: a signal while the tasks module loads or the pool starts
  // stops it gracefully as soon as it can, not by the signal's default action.
  const stop = stopControl(o.shutdownTimeout, log)
  let broker: Broker | undefined
  try {
    broker = getBroker(url, o.queue)
    const concurrency = o.concurrency ?? o.processes ?? 10
    const executor = o.processes ? childExecutor(o, concurrency) : undefined
    // Made before the tasks module loads, so that a bad option is told at once.
    const pool = new WorkerPool(broker, {
      concurrency,
      ...(o.lanes && { lanes: o.lanes }),
      sweepInterval: o.sweepInterval,
      ...(o.heartrate !== undefined && { heartrate: o.heartrate }),
      ...(o.id !== undefined && { id: o.id }),
      ...(executor && { executor }),
      taskContext: o.taskContext,
    })
    let names: readonly string[] = []
    if (!executor) {
      const tasks = await loadTasks(o.tasks)
      broker.expose(asTaskSpace(tasks))
      names = [...tasks.keys()]
    }
    // A stop asked for while the tasks module loaded: the pool never starts.
    let forced: NodeJS.Signals | undefined
    if (stop.requested === undefined) {
      logPoolEvents(pool, log, executor)
      await pool.start()
      logStart(log, pool, url, o, concurrency, executor ? executor.names : names)
      forced = await stop.run(pool)
    }
    await broker.close().catch(() => undefined)
    log.info(
      { event: 'worker:stop', id: pool.id, forced: forced !== undefined },
      `worker:stop ${pool.id}${forced ? ` at once (second ${forced})` : ''}`,
    )
    if (forced) return signalExitCode(forced)
    if (stop.requested === 'stdout')
      throw new CliExit(
        EXIT.ERROR,
        `stdout closed (${closed?.message}): the worker stopped as on SIGTERM`,
      )
    return EXIT.OK
  } finally {
    stop.dispose()
    await broker?.close().catch(() => undefined)
    stdout?.dispose()
    stderr.dispose()
  }
}

/** The child processes of `--processes`. */
function childExecutor(o: WorkerCommandOptions, concurrency: number): ChildProcessExecutor {
  const processes = o.processes!
  const execArgv = process.execArgv.filter(a => !a.startsWith('--inspect'))
  if (o.maxMemoryPerChild) execArgv.push(`--max-old-space-size=${o.maxMemoryPerChild}`)
  return new ChildProcessExecutor({
    tasks: o.tasks,
    processes,
    concurrency: Math.ceil(concurrency / processes),
    ...(o.maxTasksPerChild && { maxTasksPerChild: o.maxTasksPerChild }),
    killGrace: o.killGrace,
    execArgv,
    taskContext: o.taskContext,
  })
}

/** The `worker:start` line. */
function logStart(
  logger: Logger,
  pool: WorkerPool,
  url: string,
  o: WorkerCommandOptions,
  concurrency: number,
  names: readonly string[],
): void {
  const lanes = pool.lanes.length
  logger.info(
    {
      event: 'worker:start',
      id: pool.id,
      pid: process.pid,
      queue: o.queue,
      url: redactUrl(url),
      concurrency,
      lanes,
      processes: o.processes ?? 0,
      tasks: names,
    },
    `worker:start ${pool.id} (pid ${process.pid}) on queue ${o.queue} at ${redactUrl(url)}: ` +
      `concurrency ${concurrency}${lanes > 1 ? ` in ${lanes} lanes` : ''}` +
      `${o.processes ? `, ${o.processes} child processes` : ''}, ` +
      `${names.length} tasks (${names.join(', ')})`,
  )
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
      `tasks run at once, 1 to ${MAX_CONCURRENCY} (default: --processes when given, else 10)`,
      integer(1, MAX_CONCURRENCY),
    )
    .option(
      '--lanes <n>',
      'exchange loops of the pool, 1 to 8, at most --concurrency ' +
        '(default: 2 on Redis from concurrency 32, else 1)',
      integer(1),
    )
    .option(
      '-p, --processes <n>',
      `run tasks in this many child processes, 1 to ${MAX_PROCESSES}, instead of in the worker process`,
      integer(1, MAX_PROCESSES),
    )
    .option(
      '--max-tasks-per-child <n>',
      'replace a child process after this many tasks (with --processes)',
      integer(1, MAX_TASKS_PER_CHILD),
    )
    .option(
      '--max-memory-per-child <mb>',
      `a child's V8 heap limit in MB, 16 to ${MAX_MEMORY_PER_CHILD_MB}: past it the child dies and its task fails (with --processes)`,
      integer(16, MAX_MEMORY_PER_CHILD_MB),
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

A signal while it starts (its tasks module loading, connecting) stops it once it can.
If its stdout closes (\`worq worker | head -n 1\`), it says so on stderr and stops as on
SIGTERM: running tasks get --shutdown-timeout to finish (exit code 1).

Exit codes: 0 stopped cleanly, 1 startup error (bad URL, tasks module) or its stdout
closed, 2 usage, 130/143 stopped at once by a second SIGINT/SIGTERM.`,
    )
    .action((url: string, options: WorkerCommandOptions) => run(runWorker(url, options)))
}
