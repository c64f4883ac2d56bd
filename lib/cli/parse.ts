/**
 * Option value parsers for commander: a bad value is a usage error (exit code 2) whose message
 * names the flag (commander adds it) and what was expected. Where the library has the rule, the
 * parser asks it (`checkName`, `checkId`), so the CLI refuses what the library would.
 */
import { InvalidArgumentError } from 'commander'
import { MAX_TIMER_MS } from '../backends/backend.js'
import { checkId } from '../options.js'
import { checkName } from '../taskspace.js'

/** `value` as a number; an empty or blank value is none (Number('') would make it 0). */
function number(value: string): number {
  return value.trim() === '' ? NaN : Number(value)
}

/** An integer from `min` to `max`. */
export function integer(min: number, max = Number.MAX_SAFE_INTEGER): (value: string) => number {
  return value => {
    const n = number(value)
    if (!Number.isInteger(n) || n < min || n > max)
      throw new InvalidArgumentError(`Expected an integer from ${min} to ${max}, got "${value}".`)
    return n
  }
}

/**
 * A duration in milliseconds, from `min` to MAX_TIMER_MS (2^31 − 1, about 24.8 days): Node's
 * timers take no more, and fire at once when given more.
 */
export function ms(min = 0): (value: string) => number {
  return value => {
    const n = number(value)
    if (!Number.isFinite(n) || n < min || n > MAX_TIMER_MS)
      throw new InvalidArgumentError(
        `Expected a number of milliseconds from ${min} to ${MAX_TIMER_MS} (about 24.8 days), got "${value}".`,
      )
    return n
  }
}

/** A queue name: dotted, like `default` or `emails.high`. */
export function queueName(value: string): string {
  try {
    return checkName(value, 'queue')
  } catch {
    throw new InvalidArgumentError(
      `Expected a queue name like "default" or "emails.high" (letters, digits, _ $ -, dotted), got ${JSON.stringify(value)}.`,
    )
  }
}

/** A task id (task option `id`). */
export function taskId(value: string): string {
  try {
    return checkId(value)
  } catch {
    throw new InvalidArgumentError(
      `Expected a task id of 1–256 characters without control characters, got ${JSON.stringify(value)}.`,
    )
  }
}

/** A path or `file:` URL of a module. */
export function modulePath(value: string): string {
  if (value.trim() === '')
    throw new InvalidArgumentError('Expected the path or file: URL of a module, got "".')
  return value
}

/**
 * Parses a JSON argument of `worq call`. A `__proto__` key is refused here: the serializer
 * refuses it (a prototype-pollution risk), and the shell user is better told which argument.
 */
export function jsonArg(value: string, index: number): unknown {
  let proto = false
  let parsed: unknown
  try {
    parsed = JSON.parse(value, (key, v: unknown) => {
      if (key === '__proto__') proto = true
      return v
    })
  } catch {
    throw new InvalidArgumentError(
      `argument ${index + 1} is not JSON: ${value} (quote strings twice, as in '"text"')`,
    )
  }
  if (proto)
    throw new InvalidArgumentError(
      `argument ${index + 1} has a "__proto__" key, which worq does not send (a prototype-pollution risk); rename it`,
    )
  return parsed
}
