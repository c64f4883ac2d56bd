/**
 * `worq purge <url> --queue <name>`: discards a queue's waiting tasks (their Deferreds and
 * dependents become cancelled). Asks first on a terminal; off a terminal it needs `--yes`.
 */
import { Command } from 'commander'
import { createInterface } from 'node:readline/promises'
import { getBroker } from '../broker.js'
import { CliExit, EXIT } from './exit-codes.js'
import { queueName } from './parse.js'

/** Options of `worq purge`. */
export interface PurgeCommandOptions {
  queue: string
  yes?: boolean
}

/** Purges the queue after confirmation; resolves with the exit code. */
export async function runPurge(url: string, o: PurgeCommandOptions): Promise<number> {
  if (!o.yes && !process.stdin.isTTY)
    throw new CliExit(
      EXIT.USAGE,
      'refusing to purge without --yes: stdin is not a terminal to confirm on',
    )
  const broker = getBroker(url, o.queue)
  try {
    if (!o.yes) {
      const size = await broker.size()
      const rl = createInterface({ input: process.stdin, output: process.stderr })
      const answer = await rl.question(
        `Discard ${size} waiting task(s) of queue "${o.queue}"? Their callers get TaskCancelled. [y/N] `,
      )
      rl.close()
      if (!/^y(es)?$/i.test(answer.trim())) {
        process.stderr.write('nothing purged\n')
        return EXIT.ERROR
      }
    }
    const n = await broker.purge()
    process.stdout.write(`purged ${n} task(s) from queue ${o.queue}\n`)
    return EXIT.OK
  } finally {
    await broker.close()
  }
}

/** The `purge` command. */
export function purgeCommand(run: (code: Promise<number>) => void): Command {
  return new Command('purge')
    .description(
      "Discard a queue's waiting tasks (enqueued, delayed, pending); their callers get TaskCancelled.",
    )
    .argument('<url>', 'backend URL, e.g. redis://127.0.0.1:6379/0')
    .requiredOption('-q, --queue <name>', 'queue to purge', queueName)
    .option('-y, --yes', 'do not ask for confirmation (required when stdin is not a terminal)')
    .addHelpText(
      'after',
      '\nExit codes: 0 purged, 1 not confirmed or an error, 2 usage (including no --yes off a terminal).',
    )
    .action((url: string, options: PurgeCommandOptions) => run(runPurge(url, options)))
}
