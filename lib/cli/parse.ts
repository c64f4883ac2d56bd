/**
 * Option value parsers for commander: a bad value is a usage error (exit code 2) whose message
 * names what was expected.
 */
import { InvalidArgumentError } from 'commander'
import { MAX_TIMER_MS } from '../backends/backend.js'

/** `value` as a number; an empty or blank value is none (Number('') would make it 0). */
function number(value: string): number {
  return value.trim() === '' ? NaN : Number(value)
}

/** An integer ≥ `min`. */
export function integer(min: number): (value: string) => number {
  return value => {
    const n = number(value)
    if (!Number.isInteger(n) || n < min)
      throw new InvalidArgumentError(`Expected an integer ≥ ${min}, got "${value}".`)
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

/** Parses a JSON argument of `worq call`. */
export function jsonArg(value: string, index: number): unknown {
  try {
    return JSON.parse(value)
  } catch {
    throw new InvalidArgumentError(
      `argument ${index + 1} is not JSON: ${value} (quote strings twice, as in '"text"')`,
    )
  }
}
