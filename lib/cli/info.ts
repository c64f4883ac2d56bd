/**
 * `worq info <url>`: a queue's counts (waiting, delayed, pending, processing), whether it is paused,
 * the age of its oldest waiting task, its live workers, and the task types they expose.
 */
import { Command } from 'commander'
import { getBroker } from '../broker.js'
import type { TaskType } from '../admin/queue-admin.js'
import type { QueueInfo } from '../backends/backend.js'
import { EXIT } from './exit-codes.js'
import { queueName } from './parse.js'

/** Options of `worq info`. */
export interface InfoCommandOptions {
  queue: string
  json?: boolean
}

/** Prints what the backend knows of a queue; resolves with the exit code. */
export async function runInfo(url: string, o: InfoCommandOptions): Promise<number> {
  const broker = getBroker(url, o.queue)
  try {
    const { backend } = await broker.backend()
    const [info, types] = await Promise.all([broker.inspect(), broker.types()])
    process.stdout.write(
      o.json
        ? JSON.stringify({ queue: o.queue, url: backend.url, ...info, types }) + '\n'
        : describe(o.queue, backend.url, info, types),
    )
    return EXIT.OK
  } finally {
    await broker.close()
  }
}

function describe(queue: string, url: string, info: QueueInfo, types: readonly TaskType[]): string {
  const now = Date.now()
  const lines = [
    `queue ${queue} at ${url}${info.paused ? '  (paused: nothing new starts)' : ''}`,
    `  waiting     ${info.waiting}`,
    `  delayed     ${info.delayed}`,
    `  pending     ${info.pending}   (waiting for Deferred arguments)`,
    `  processing  ${info.processing}   (in flight)`,
    `  oldest waiting task: ${info.oldestWaitingMs === null ? 'none' : age(info.oldestWaitingMs)}`,
    `workers: ${info.workers.length}`,
  ]
  for (const w of info.workers)
    lines.push(
      `  ${w.id}  ${w.hostname} pid ${w.pid}  running ${w.running}/${w.concurrency}  ` +
        `up ${age(now - w.startedAt)}  seen ${age(now - w.seenAt)} ago`,
    )
  lines.push(`task types: ${types.length}`)
  for (const t of types)
    lines.push(`  ${t.name}  (${t.workers} worker${t.workers === 1 ? '' : 's'})`)
  return lines.join('\n') + '\n'
}

function age(ms: number): string {
  if (ms < 1000) return `${Math.max(0, Math.round(ms))} ms`
  if (ms < 120_000) return `${(ms / 1000).toFixed(1)} s`
  if (ms < 7_200_000) return `${Math.round(ms / 60_000)} min`
  return `${(ms / 3_600_000).toFixed(1)} h`
}

/** The `info` command. */
export function infoCommand(run: (code: Promise<number>) => void): Command {
  return new Command('info')
    .description(
      'Show a queue: waiting, delayed, pending and in-flight tasks, whether it is paused, live workers and the task types they expose.',
    )
    .argument('<url>', 'backend URL, e.g. redis://127.0.0.1:6379/0')
    .option('-q, --queue <name>', 'queue to inspect', queueName, 'default')
    .option('--json', 'print one JSON object instead of text')
    .action((url: string, options: InfoCommandOptions) => run(runInfo(url, options)))
}
