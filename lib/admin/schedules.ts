/**
 * Periodic tasks: checking a schedule's timing, and computing its due times. Cron expressions (five
 * fields, or six with seconds) and time zones, daylight-saving changes included, are croner's: a
 * well-kept parser whose next-run computation is tested against time-zone transitions, which
 * worq does not hand-write.
 */
import { Cron } from 'croner'
import { MAX_DURATION_MS, type StoredSchedule } from '../backends/backend.js'

/** When a schedule fires, and for how long. */
export type Schedule = (
  | {
      /** A cron expression: five fields (minute hour day month weekday), or six with seconds first. */
      cron: string
      /**
       * The IANA time zone the expression is read in. @default the zone of the process that calls
       * `schedule()`, stored with the schedule
       */
      tz?: string
    }
  | {
      /** ms between runs, from 10; a fraction of a ms is rounded up (10.4 runs every 11 ms). */
      every: number
    }
) & {
  /** No run before this time. @default now */
  startAt?: Date
  /**
   * No run after this time. It must leave a run: an `endAt` in the past, or before the first due
   * time, is a TypeError. @default never ends
   */
  endAt?: Date
  /** Most runs in all. @default no limit */
  limit?: number
  /**
   * When due times passed while no pool ran, fire once for them as a pool starts (true) or skip
   * them (false). @default true
   */
  catchUp?: boolean
}

/** A schedule as `broker.schedules()` lists it. */
export interface ScheduleInfo {
  /** The schedule's id. */
  id: string
  /** The dotted task name each run calls. */
  name: string
  /** Its cron expression. */
  cron?: string
  /** The cron expression's time zone. */
  tz?: string
  /** ms between runs. */
  every?: number
  /** The next due time; undefined once the schedule has ended (its `endAt` or `limit`). */
  next?: Date
  /** The last due time it ran for. */
  last?: Date
  /** Runs so far. */
  runs: number
}

/** A due time this far in the past counts as missed (no pool ran): catch-up rules apply. */
export const MISSED_MS = 2_000

const KEYS = new Set(['cron', 'tz', 'every', 'startAt', 'endAt', 'limit', 'catchUp'])

function validDate(name: string, v: unknown): number {
  if (!(v instanceof Date) || !Number.isFinite(v.getTime()))
    throw new TypeError(`Expected \`${name}\` to be a valid Date`)
  return v.getTime()
}

/** Checks a schedule's timing (a TypeError names what to change) and returns its stored form. */
export function checkSchedule(
  when: unknown,
): Pick<StoredSchedule, 'when' | 'startAt' | 'endAt' | 'limit' | 'catchUp'> {
  if (typeof when !== 'object' || when === null)
    throw new TypeError("Expected `when` to be { cron: '0 3 * * *', tz? } or { every: <ms> }")
  const w = when as Record<string, unknown>
  for (const k of Object.keys(w))
    if (!KEYS.has(k))
      throw new TypeError(`Unknown schedule field \`${k}\`; known: ${[...KEYS].join(', ')}`)
  const out: ReturnType<typeof checkSchedule> = {
    when: { every: 0 },
    catchUp: w.catchUp === undefined ? true : w.catchUp === true,
  }
  if (w.catchUp !== undefined && typeof w.catchUp !== 'boolean')
    throw new TypeError('Expected `catchUp` to be a boolean')
  if ((w.cron === undefined) === (w.every === undefined))
    throw new TypeError("Expected `when` to have either `cron` ('0 3 * * *') or `every` (ms)")
  if (w.cron !== undefined) {
    if (typeof w.cron !== 'string') throw new TypeError('Expected `cron` to be a cron expression')
    if (w.tz !== undefined && typeof w.tz !== 'string')
      throw new TypeError("Expected `tz` to be an IANA time zone such as 'Europe/Berlin'")
    const fields = w.cron.trim().split(/\s+/).length
    if (fields !== 5 && fields !== 6)
      throw new TypeError(
        `Expected \`cron\` to have five fields (minute hour day month weekday) or six (seconds first), got ${fields}: ${JSON.stringify(w.cron)}`,
      )
    let next: Date | null
    try {
      if (w.tz !== undefined) new Intl.DateTimeFormat('en', { timeZone: w.tz as string })
      next = cronOf(w.cron, w.tz as string | undefined).nextRun()
    } catch (err) {
      throw new TypeError(`Expected \`cron\` and \`tz\` to be valid: ${(err as Error).message}`, {
        cause: err,
      })
    }
    // croner finds no next run for a day that never falls in the months given (February 31).
    if (next === null)
      throw new TypeError(
        `Expected \`cron\` to match some time, but ${JSON.stringify(w.cron)} never fires: no month it names has the day it names (like February 30 or April 31); fix its day-of-month or month field`,
      )
    // Without a zone, the caller's is stored with the schedule, so that every process that computes
    // a due time (the pools that fire it, in whatever zone they run) reads the expression alike.
    out.when = {
      cron: w.cron,
      tz: (w.tz as string | undefined) ?? Intl.DateTimeFormat().resolvedOptions().timeZone,
    }
  } else {
    if (typeof w.every !== 'number' || !(w.every >= 10 && w.every <= MAX_DURATION_MS))
      throw new TypeError(
        `Expected \`every\` to be a number of ms from 10 to ${MAX_DURATION_MS} (100 years), got ${String(w.every)}`,
      )
    if (w.tz !== undefined) throw new TypeError('`tz` goes with `cron`, not with `every`')
    // A fraction of a ms is rounded up, as the duration options of a task are (options.ts).
    out.when = { every: Math.ceil(w.every) }
  }
  if (w.startAt !== undefined) out.startAt = validDate('startAt', w.startAt)
  if (w.endAt !== undefined) out.endAt = validDate('endAt', w.endAt)
  if (out.startAt !== undefined && out.endAt !== undefined && out.endAt <= out.startAt)
    throw new TypeError('Expected `endAt` to be after `startAt`')
  if (w.limit !== undefined) {
    if (!Number.isInteger(w.limit) || (w.limit as number) < 1 || (w.limit as number) > 1e9)
      throw new TypeError(
        `Expected \`limit\` to be an integer from 1 to 1000000000 (runs), got ${String(w.limit)}`,
      )
    out.limit = w.limit as number
  }
  return out
}

function cronOf(expr: string, tz: string | undefined): Cron {
  return new Cron(expr, { paused: true, ...(tz !== undefined && { timezone: tz }) })
}

/**
 * The first due time strictly after `after` (epoch ms), or null when the schedule has ended (past
 * `endAt`, or `runs` reached `limit`). An `every` schedule counts from its `startAt` (which
 * `broker.schedule` sets to one interval from now when none is given).
 */
export function nextDue(
  s: Pick<StoredSchedule, 'when' | 'startAt' | 'endAt' | 'limit' | 'runs'>,
  after: number,
): number | null {
  if (s.limit !== undefined && s.runs >= s.limit) return null
  const from = s.startAt !== undefined ? Math.max(after, s.startAt - 1) : after
  let due: number
  if ('cron' in s.when) {
    const next = cronOf(s.when.cron, s.when.tz).nextRun(new Date(from))
    if (!next) return null
    due = next.getTime()
  } else {
    const start = s.startAt ?? after + s.when.every
    const every = s.when.every
    due = from < start ? start : start + (Math.floor((from - start) / every) + 1) * every
  }
  if (s.endAt !== undefined && due > s.endAt) return null
  return due
}

/** How `broker.schedules()` shows a stored schedule. */
export function scheduleInfo(s: StoredSchedule): ScheduleInfo {
  const info: ScheduleInfo = { id: s.id, name: s.name, runs: s.runs }
  if ('cron' in s.when) {
    info.cron = s.when.cron
    if (s.when.tz !== undefined) info.tz = s.when.tz
  } else info.every = s.when.every
  if (s.next !== null) info.next = new Date(s.next)
  if (s.last !== undefined) info.last = new Date(s.last)
  return info
}
