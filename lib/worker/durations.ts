/**
 * Durations and Node's timers. A timer takes at most 2^31 − 1 ms (MAX_TIMER_MS): past it, it fires
 * after 1 ms (and Node prints a TimeoutOverflowWarning), so an hour-long wait becomes a busy loop.
 * The pool's options are refused past it; what comes from elsewhere (a task stored by an earlier
 * worq, a sum of two durations) is clamped by {@link timerMs} where a timer is set.
 */
import { MAX_TIMER_MS } from '../backends/backend.js'

/** `ms` as a timer can wait it: at most MAX_TIMER_MS, at least 0 (NaN: 0). */
export function timerMs(ms: number): number {
  return ms > MAX_TIMER_MS ? MAX_TIMER_MS : ms >= 0 ? ms : 0
}

/**
 * `value`, checked to be a number of ms from `min` to MAX_TIMER_MS; else a TypeError naming option
 * `name` (`also` says what else it may be).
 */
export function checkDuration(name: string, value: unknown, min: number, also = ''): number {
  if (typeof value === 'number' && value >= min && value <= MAX_TIMER_MS) return value
  const got = typeof value === 'string' ? JSON.stringify(value) : String(value)
  throw new TypeError(
    `Expected \`${name}\` to be a number from ${min} to ${MAX_TIMER_MS} (milliseconds)${also}, got ${got}`,
  )
}
