/**
 * `worq tasks <url>`: a queue's tasks, newest first (a table for people, JSON lines for scripts);
 * `worq task <url> <id>`: one task; `worq cancel <url> <id>`: cancels one. Exit codes: 0 done,
 * 4 an unknown id (exit-codes.ts).
 */
import { Command } from 'commander'
import { getBroker } from '../broker.js'
import type { TaskInfo } from '../task-info.js'
import type { TaskStatus } from '../types.js'
import { CliExit, EXIT } from './exit-codes.js'
import { toJson } from './json.js'
import { integer, queueName } from './parse.js'

/** Options of `worq tasks`. */
export interface TasksCommandOptions {
  queue: string
  status?: string
  name?: string
  limit: number
  offset: number
  json?: boolean
}

function age(ms: number): string {
  if (ms < 1000) return `${Math.max(0, Math.round(ms))}ms`
  if (ms < 120_000) return `${(ms / 1000).toFixed(1)}s`
  if (ms < 7_200_000) return `${Math.round(ms / 60_000)}m`
  return `${(ms / 3_600_000).toFixed(1)}h`
}

/** One line of JSON per task (dates as ISO strings). */
function jsonLine(t: TaskInfo): string {
  return toJson(t)
}

/** The table people read. */
function table(tasks: readonly TaskInfo[]): string {
  const now = Date.now()
  const rows = tasks.map(t => [
    t.id,
    t.name,
    t.status,
    String(t.priority),
    `${t.attempt}/${t.attempts}`,
    age(now - t.createdAt.getTime()),
    t.workerId ?? '',
  ])
  const head = ['ID', 'NAME', 'STATUS', 'PRIO', 'ATTEMPT', 'AGE', 'WORKER']
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map(r => r[i]!.length)))
  const line = (r: string[]) =>
    r
      .map((c, i) => c.padEnd(widths[i]!))
      .join('  ')
      .trimEnd()
  return [line(head), ...rows.map(line)].join('\n') + '\n'
}

/** Lists tasks; resolves with the exit code. */
export async function runTasks(url: string, o: TasksCommandOptions): Promise<number> {
  const broker = getBroker(url, o.queue)
  try {
    const status = o.status?.split(',').map(s => s.trim()) as TaskStatus[] | undefined
    // The library checks the filter; program.ts reports its TypeError as a usage error.
    const tasks = await broker.tasks({
      ...(status && { status }),
      ...(o.name !== undefined && { name: o.name }),
      limit: o.limit,
      offset: o.offset,
    })
    process.stdout.write(o.json ? tasks.map(t => jsonLine(t) + '\n').join('') : table(tasks))
    return EXIT.OK
  } finally {
    await broker.close()
  }
}

/** Options of `worq task` and `worq cancel`. */
export interface TaskCommandOptions {
  queue: string
  json?: boolean
}

function describe(t: TaskInfo): string {
  const lines = [
    `task ${t.id}  ${t.name}  [${t.queue}]`,
    `  status     ${t.status}${t.cached ? ' (from the cache)' : ''}`,
    `  priority   ${t.priority}`,
    `  attempt    ${t.attempt} of ${t.attempts}`,
    `  created    ${t.createdAt.toISOString()}`,
  ]
  if (t.runAt) lines.push(`  runs at    ${t.runAt.toISOString()}`)
  if (t.startedAt) lines.push(`  started    ${t.startedAt.toISOString()}`)
  if (t.finishedAt) lines.push(`  finished   ${t.finishedAt.toISOString()}`)
  if (t.workerId) lines.push(`  worker     ${t.workerId}`)
  if (t.progress !== undefined) lines.push(`  progress   ${toJson(t.progress)}`)
  if (Object.keys(t.metadata).length > 0) lines.push(`  metadata   ${toJson(t.metadata)}`)
  if (t.status === 'completed') lines.push(`  value      ${toJson(t.value)}`)
  if (t.error) {
    lines.push(`  error      ${t.error.name}: ${t.error.message}`)
    if (t.error.stack) lines.push(t.error.stack.replace(/^/gm, '    '))
  }
  return lines.join('\n') + '\n'
}

/** Shows one task; resolves with the exit code (4 when unknown). */
export async function runTask(url: string, id: string, o: TaskCommandOptions): Promise<number> {
  const broker = getBroker(url, o.queue)
  try {
    const t = await broker.task(id)
    if (!t)
      throw new CliExit(
        EXIT.UNKNOWN_TASK,
        `no task ${id} in queue ${o.queue} (never enqueued, or its outcome expired)`,
      )
    process.stdout.write(o.json ? jsonLine(t) + '\n' : describe(t))
    return EXIT.OK
  } finally {
    await broker.close()
  }
}

/** Cancels one task; resolves with the exit code (4 when unknown, 1 when it had already ended). */
export async function runCancel(url: string, id: string, o: TaskCommandOptions): Promise<number> {
  const broker = getBroker(url, o.queue)
  try {
    const cancelled = await broker.cancel(id)
    if (cancelled) {
      process.stdout.write(`cancelled ${id}\n`)
      return EXIT.OK
    }
    const t = await broker.task(id)
    if (!t) throw new CliExit(EXIT.UNKNOWN_TASK, `no task ${id} in queue ${o.queue}`)
    throw new CliExit(EXIT.ERROR, `task ${id} had already ended (${t.status}): nothing to cancel`)
  } finally {
    await broker.close()
  }
}

/** The `tasks`, `task` and `cancel` commands. */
export function taskCommands(run: (code: Promise<number>) => void): Command[] {
  const tasks = new Command('tasks')
    .description(
      "List a queue's tasks, newest first (pending, enqueued, processing, and finished ones while kept).",
    )
    .argument('<url>', 'backend URL, e.g. redis://127.0.0.1:6379/0')
    .option('-q, --queue <name>', 'queue', queueName, 'default')
    .option('-s, --status <statuses>', 'only these statuses, comma-separated (e.g. failed,expired)')
    .option('-n, --name <name>', 'only this task name, or a namespace prefix ending in "."')
    .option('-l, --limit <n>', 'at most this many (1–1000)', integer(1, 1000), 50)
    .option('--offset <n>', 'skip this many first', integer(0), 0)
    .option('--json', 'one JSON object per line instead of a table')
    .action((url: string, options: TasksCommandOptions) => run(runTasks(url, options)))
  const one = new Command('task')
    .description('Show one task: status, timings, progress, metadata, result or error.')
    .argument('<url>', 'backend URL')
    .argument('<id>', 'task id')
    .option('-q, --queue <name>', 'queue', queueName, 'default')
    .option('--json', 'one JSON object instead of text')
    .addHelpText('after', '\nExit codes: 0 shown, 2 usage, 4 no such task.')
    .action((url: string, id: string, options: TaskCommandOptions) =>
      run(runTask(url, id, options)),
    )
  const cancel = new Command('cancel')
    .description('Cancel a task that has not ended; a running one is told to stop.')
    .argument('<url>', 'backend URL')
    .argument('<id>', 'task id')
    .option('-q, --queue <name>', 'queue', queueName, 'default')
    .addHelpText(
      'after',
      '\nExit codes: 0 cancelled, 1 it had already ended, 2 usage, 4 no such task.',
    )
    .action((url: string, id: string, options: TaskCommandOptions) =>
      run(runCancel(url, id, options)),
    )
  return [tasks, one, cancel]
}
