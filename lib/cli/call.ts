/**
 * `worq call <url> <dotted.name> [json args…]`: enqueues one call from the shell and prints its
 * result as JSON. Exit code 1 when the task failed, 3 when no result came within `--wait`.
 */
import { Command } from 'commander'
import { getBroker } from '../broker.js'
import { TaskFailure, WaitTimeout } from '../errors.js'
import { task } from '../queue.js'
import { checkName } from '../taskspace.js'
import type { TaskOptions } from '../types.js'
import { CliExit, EXIT } from './exit-codes.js'
import { toJson } from './json.js'
import { MAX_ATTEMPTS } from '../options.js'
import { integer, jsonArg, ms, queueName, taskId } from './parse.js'

/** Options of `worq call`. */
export interface CallCommandOptions {
  queue: string
  wait: number
  attempts?: number
  timeout?: number
  heartrate?: number
  id?: string
}

/** Enqueues `name(...args)`, prints the result; resolves with the exit code. */
export async function runCall(
  url: string,
  name: string,
  rawArgs: string[],
  o: CallCommandOptions,
): Promise<number> {
  try {
    checkName(name, 'name')
  } catch (err) {
    throw new CliExit(EXIT.USAGE, (err as Error).message)
  }
  const args = rawArgs.map(jsonArg)
  const options: TaskOptions = {}
  if (o.attempts !== undefined) options.attempts = o.attempts
  if (o.timeout !== undefined) options.timeout = o.timeout
  if (o.heartrate !== undefined) options.heartrate = o.heartrate
  if (o.id !== undefined) options.id = o.id
  const broker = getBroker(url, o.queue)
  try {
    let fn: any = broker.queue()
    for (const part of name.split('.')) fn = fn[part]
    const d = await task(fn, options)(...args)
    if (o.wait === 0) {
      process.stdout.write(toJson({ id: d.id }) + '\n')
      return EXIT.OK
    }
    try {
      process.stdout.write(toJson(await d.result(o.wait)) + '\n')
      return EXIT.OK
    } catch (err) {
      if (err instanceof WaitTimeout)
        throw new CliExit(EXIT.WAIT_TIMEOUT, `${err.message} (task id ${d.id})`)
      if (err instanceof TaskFailure) {
        const stack = err.remote.stack ? `\n${err.remote.stack}` : ''
        throw new CliExit(EXIT.ERROR, `${err.code}: ${err.message}${stack}`)
      }
      throw err
    }
  } finally {
    await broker.close()
  }
}

/** The `call` command. */
export function callCommand(run: (code: Promise<number>) => void): Command {
  return new Command('call')
    .description('Enqueue one call and print its result as JSON.')
    .argument('<url>', 'backend URL, e.g. redis://127.0.0.1:6379/0')
    .argument('<name>', 'dotted task name, e.g. math.add')
    .argument('[args...]', 'arguments, each one JSON value: 1 \'"text"\' \'{"a":[1,2]}\'')
    .option('-q, --queue <name>', 'queue to enqueue on', queueName, 'default')
    .option(
      '-w, --wait <ms>',
      'ms to wait for the result; 0 prints the task id at once',
      ms(0),
      60_000,
    )
    .option(
      '--attempts <n>',
      `runs allowed in all, 1 to ${MAX_ATTEMPTS} (task option attempts)`,
      integer(1, MAX_ATTEMPTS),
    )
    .option('--timeout <ms>', 'ms one run may take (task option timeout)', ms(1))
    .option(
      '--heartrate <ms>',
      'ms between lease renewals while it runs; the lease is 2 × heartrate + 1 s (task option heartrate)',
      ms(10),
    )
    .option('--id <id>', 'task id (task option id)', taskId)
    .addHelpText(
      'after',
      `
Put -- before arguments that start with a dash: worq call <url> math.add -- -1 2

Exit codes: 0 result printed, 1 the task failed (or the backend could not be reached),
2 usage (e.g. an argument that is not JSON), 3 no result within --wait.`,
    )
    .action((url: string, name: string, args: string[], options: CallCommandOptions) =>
      run(runCall(url, name, args, options)),
    )
}
