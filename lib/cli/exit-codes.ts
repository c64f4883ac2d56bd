/**
 * Exit codes of the `worq` command (docs/worker.md lists them too).
 *
 * | code | meaning |
 * |---|---|
 * | 0 | done; for `worker`: stopped cleanly (after one SIGTERM or SIGINT, running tasks finished or were handed back) |
 * | 1 | an error: a bad URL, a tasks module that cannot load, a backend that cannot be reached (`dashboard` serves on: its API answers 503); for `call`: the task failed, expired or was cancelled; for `purge`: not confirmed; for `cancel`: the task had already ended; for `worker`: its stdout closed (it stopped as on SIGTERM first); for `dashboard`: it cannot listen |
 * | 2 | usage: an unknown command or option, a bad option value (out of range, such as a duration past MAX_TIMER_MS, or refused by the library's checks: option-errors.ts), a bad JSON argument, `purge` without `--yes` off a terminal |
 * | 3 | `call`: no result within `--wait` (the task may still run; its id is printed) |
 * | 4 | `task`, `cancel`: no such task (never enqueued, or its outcome expired) |
 * | 130 | `worker`: stopped at once by a second SIGINT (128 + 2); running tasks were handed back |
 * | 143 | `worker`: stopped at once by a second SIGTERM (128 + 15); running tasks were handed back |
 */
export const EXIT = {
  OK: 0,
  ERROR: 1,
  USAGE: 2,
  WAIT_TIMEOUT: 3,
  UNKNOWN_TASK: 4,
} as const

/** 128 + the signal's number, the shell convention for "ended by a signal". */
export function signalExitCode(signal: NodeJS.Signals): number {
  return signal === 'SIGINT' ? 130 : signal === 'SIGTERM' ? 143 : 1
}

/** A failure the command reports with its own exit code (not a crash). */
export class CliExit extends Error {
  constructor(
    readonly exitCode: number,
    message: string,
  ) {
    super(message)
    this.name = 'CliExit'
  }
}
