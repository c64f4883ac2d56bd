/**
 * The library's own checks of options, seen from the shell: `new WorkerPool(broker, { lanes: 9 })`
 * throws "Expected `lanes` to be …", which `worq worker --lanes 9` reports as a usage error
 * (exit code 2) naming `--lanes`.
 */
import type { Command } from 'commander'

/**
 * Whether `err` is one of the library's argument checks: a TypeError or RangeError with no `code`
 * whose message starts with "Expected" or "Unknown" (docs: "Argument checks throw TypeError …").
 * A bug's TypeError ("Cannot read properties of undefined") does not start so, and Node's own
 * (ERR_INVALID_ARG_TYPE, ERR_SOCKET_BAD_PORT) carry a code: those stay errors (exit code 1).
 */
export function isOptionError(err: unknown): err is TypeError | RangeError {
  return (
    (err instanceof TypeError || err instanceof RangeError) &&
    (err as { code?: unknown }).code === undefined &&
    /^(Expected|Unknown) /.test(err.message)
  )
}

/**
 * `message` with the API's option names given as `command`'s flags (`` `lanes` `` as `--lanes`,
 * `` `sweepInterval` `` as `--sweep-interval`), cut to its first line. Names the command has no
 * flag for stay as they are.
 */
export function withFlags(message: string, command: Command | undefined): string {
  const flags = new Map<string, string>()
  for (const o of command?.options ?? [])
    if (o.long && !o.negate) flags.set(o.attributeName(), o.long)
  return message
    .split('\n')[0]!
    .replace(/`([\w$]+)`/g, (name: string, key: string) => flags.get(key) ?? name)
}
