/**
 * Option value parsers for commander: a bad value is a usage error (exit code 2) whose message
 * names what was expected.
 */
import { InvalidArgumentError } from 'commander'

/** An integer ≥ `min`. */
export function integer(min: number): (value: string) => number {
  return value => {
    const n = Number(value)
    if (!Number.isInteger(n) || n < min)
      throw new InvalidArgumentError(`Expected an integer ≥ ${min}, got "${value}".`)
    return n
  }
}

/** A duration in milliseconds, ≥ `min`. */
export function ms(min = 0): (value: string) => number {
  return value => {
    const n = Number(value)
    if (!Number.isFinite(n) || n < min)
      throw new InvalidArgumentError(`Expected a number of milliseconds ≥ ${min}, got "${value}".`)
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
