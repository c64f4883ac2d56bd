/**
 * `worq pause <url>` and `worq resume <url>`: hold a queue's work (running tasks finish) and let it
 * go on; `worq schedules <url>`: the queue's periodic tasks.
 */
import { Command } from 'commander'
import { getBroker } from '../broker.js'
import { EXIT } from './exit-codes.js'
import { toJson } from './json.js'
import { queueName } from './parse.js'

/** Options of the queue commands. */
export interface QueueCommandOptions {
  queue: string
  json?: boolean
}

/** Pauses or resumes a queue; resolves with the exit code. */
export async function runPause(
  url: string,
  paused: boolean,
  o: QueueCommandOptions,
): Promise<number> {
  const broker = getBroker(url, o.queue)
  try {
    if (paused) await broker.pause()
    else await broker.resume()
    process.stdout.write(`queue ${o.queue} ${paused ? 'paused: nothing new starts' : 'resumed'}\n`)
    return EXIT.OK
  } finally {
    await broker.close()
  }
}

/** Lists a queue's schedules; resolves with the exit code. */
export async function runSchedules(url: string, o: QueueCommandOptions): Promise<number> {
  const broker = getBroker(url, o.queue)
  try {
    const all = await broker.schedules()
    if (o.json) {
      process.stdout.write(all.map(s => toJson(s) + '\n').join(''))
      return EXIT.OK
    }
    const lines = [`schedules of queue ${o.queue}: ${all.length}`]
    for (const s of all.sort((a, b) => (a.id < b.id ? -1 : 1))) {
      const when =
        s.cron !== undefined ? `cron "${s.cron}"${s.tz ? ` ${s.tz}` : ''}` : `every ${s.every} ms`
      lines.push(
        `  ${s.id}  ${s.name}  ${when}  next ${s.next?.toISOString() ?? '(ended)'}  last ${s.last?.toISOString() ?? '-'}  runs ${s.runs}`,
      )
    }
    process.stdout.write(lines.join('\n') + '\n')
    return EXIT.OK
  } finally {
    await broker.close()
  }
}

/** The `pause`, `resume` and `schedules` commands. */
export function queueCommands(run: (code: Promise<number>) => void): Command[] {
  const option = (c: Command) =>
    c.argument('<url>', 'backend URL').option('-q, --queue <name>', 'queue', queueName, 'default')
  return [
    option(
      new Command('pause').description(
        'Pause a queue: it takes enqueues and starts nothing new; running tasks finish.',
      ),
    ).action((url: string, o: QueueCommandOptions) => run(runPause(url, true, o))),
    option(
      new Command('resume').description(
        'Resume a paused queue: what waited runs, in priority order.',
      ),
    ).action((url: string, o: QueueCommandOptions) => run(runPause(url, false, o))),
    option(
      new Command('schedules').description(
        "List a queue's periodic tasks with their next due time.",
      ),
    )
      .option('--json', 'one JSON object per line')
      .action((url: string, o: QueueCommandOptions) => run(runSchedules(url, o))),
  ]
}
