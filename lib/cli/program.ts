/**
 * The `worq` command's program: parses arguments and runs one command. main.ts is the executable;
 * this module has no side effect on import, so tests can drive it in-process (the CLI fuzz test).
 * Exit codes: see exit-codes.ts (and docs/worker.md).
 */
import { Command, CommanderError } from 'commander'
import { createRequire } from 'node:module'
import { callCommand } from './call.js'
import { dashboardCommand } from './dashboard.js'
import { CliExit, EXIT } from './exit-codes.js'
import { infoCommand } from './info.js'
import { migrateCommand } from './migrate.js'
import { isOptionError, withFlags } from './option-errors.js'
import { purgeCommand } from './purge.js'
import { workerCommand } from './worker.js'
import { taskCommands } from './tasks.js'
import { queueCommands } from './queue-admin.js'

const { version } = createRequire(import.meta.url)('../../package.json') as { version: string }

/** Parses `argv` and runs the command; resolves with the process's exit code. */
export async function main(argv: string[] = process.argv): Promise<number> {
  let pending: Promise<number> | undefined
  const run = (p: Promise<number>) => {
    pending = p
  }
  const program = new Command('worq')
    .description('worq: run workers of a namespaced remote-call task queue, and look into queues.')
    .version(version)
    .exitOverride()
    .showHelpAfterError('(add --help for usage)')
  const commands = [
    workerCommand(run),
    infoCommand(run),
    callCommand(run),
    purgeCommand(run),
    ...taskCommands(run),
    ...queueCommands(run),
    dashboardCommand(run),
    migrateCommand(run),
  ]
  for (const cmd of commands) {
    program.addCommand(cmd.copyInheritedSettings(program))
  }
  // The command that runs: the library's option errors are reported with its flags' names.
  let active: Command | undefined
  program.hook('preAction', (_program, command) => {
    active = command
  })
  try {
    await program.parseAsync(argv)
  } catch (err) {
    if (!(err instanceof CommanderError)) throw err
    // Help asked for (`--help`, `help`, `help <command>`) and `--version` end with 0.
    return err.exitCode === 0 ? EXIT.OK : EXIT.USAGE
  }
  if (!pending) return EXIT.OK
  try {
    return await pending
  } catch (err) {
    if (err instanceof CliExit) {
      process.stderr.write(`worq: ${err.message}\n`)
      return err.exitCode
    }
    if (err instanceof CommanderError) {
      process.stderr.write(`worq: ${err.message}\n`)
      return EXIT.USAGE
    }
    if (isOptionError(err)) {
      process.stderr.write(`worq: ${withFlags(err.message, active)}\n`)
      return EXIT.USAGE
    }
    const e = err as Error & { code?: string }
    process.stderr.write(`worq: ${e.code ? `${e.code}: ` : ''}${e.message}\n`)
    return EXIT.ERROR
  }
}
