/**
 * The queue data that crosses the backend contract (lib/backends/backend.ts): what a backend keeps
 * and reports of a queue rather than of one task (records.ts): its live workers and counts, its
 * settings, limits and schedules, its events and its per-minute metrics.
 */
import type { NewTask } from './records.js'

/** A live worker, as `worq info` lists it. */
export interface WorkerInfo {
  /** The worker's id (WorkerPool `id`). */
  id: string
  /** The host it runs on. */
  hostname: string
  /** Its process id. */
  pid: number
  /** Tasks it runs at once, at most. */
  concurrency: number
  /** Tasks it runs now. */
  running: number
  /** Epoch ms it started. */
  startedAt: number
  /** Epoch ms of its last registration (filled in by the backend on read). */
  seenAt: number
  /** The task names it exposes. */
  names: string[]
  /** Ids of the tasks it runs now (at most 100). */
  tasks: string[]
}

/** What `inspect` reports of a queue. */
export interface QueueInfo {
  /** Enqueued and ready, or waiting for a slot of a concurrency limit. */
  waiting: number
  /** Enqueued but held back (delay, runAt, retry backoff, a rate limit). */
  delayed: number
  /** Waiting for Deferred arguments, or for the result of an identical call (the cache's single flight). */
  pending: number
  /** Reserved by a worker. */
  processing: number
  /** Age in ms of the oldest ready task, or null when none waits. */
  oldestWaitingMs: number | null
  /** True while the queue is paused. */
  paused: boolean
  /** Workers whose registration has not lapsed. */
  workers: WorkerInfo[]
}

/** Queue settings, stored in the backend so that every process of the queue agrees. */
export interface QueueSettings {
  /** A paused queue takes enqueues and starts nothing new. */
  paused: boolean
  /** Keep an event stream of the queue (docs/events.md). */
  events: boolean
  /** How many events the stream keeps (at least). */
  eventsMax: number
  /** Keep per-minute counts and time histograms (docs/metrics.md). */
  metrics: boolean
  /** Index every task so that finished ones are listed, and keep their call (docs/tasks.md). */
  listing: boolean
  /** Most entries of the result cache. */
  cacheSize: number
  /** ms a cached result lives when a call asks for `cache: true`. */
  cacheTtl: number
}

/** A limit that binds every worker of a queue (docs/limits.md). */
export interface Limit {
  /** At most this many such tasks run at once. */
  concurrency?: number
  /** At most `max` starts in any window of `per` ms. */
  rate?: {
    /** Starts allowed in a window. */
    max: number
    /** The window, ms. */
    per: number
  }
}

/**
 * Whether a stored limit reads as one (`limit()` stores nothing else): `concurrency` a whole
 * number, `rate` whole numbers `max` and `per` > 0, at least one of them. One written by something
 * other than worq (or damaged) binds nothing and is left out of `limits()`.
 */
export function readableLimit(l: unknown): l is Limit {
  if (typeof l !== 'object' || l === null) return false
  const { concurrency, rate } = l as { concurrency?: unknown; rate?: unknown }
  const whole = (v: unknown, min: number) => Number.isSafeInteger(v) && (v as number) >= min
  const r = rate as { max?: unknown; per?: unknown } | null | undefined
  return (
    (concurrency !== undefined || rate !== undefined) &&
    (concurrency === undefined || whole(concurrency, 0)) &&
    (rate === undefined ||
      (typeof r === 'object' && r !== null && whole(r.max, 0) && whole(r.per, 1)))
  )
}

/** When a schedule fires: a cron expression (with a time zone) or a fixed interval. */
export type ScheduleWhen = { cron: string; tz?: string } | { every: number }

/** A periodic task as the backend stores it. */
export interface StoredSchedule {
  id: string
  /** The dotted task name it calls. */
  name: string
  when: ScheduleWhen
  /**
   * The task every run enqueues; its `id` (a chosen one: `<id>@<due time>`) and `runAt` are set
   * per run.
   */
  task: Omit<NewTask, 'id' | 'runAt' | 'idChosen'>
  startAt?: number
  endAt?: number
  /** Most runs in all. */
  limit?: number
  /** Fire once for due times missed while no pool ran. */
  catchUp: boolean
  /**
   * This definition's generation: a fresh random id on every store, so that a firing from a read
   * of a definition since replaced is refused (Backend.fireSchedule). Absent on a schedule stored
   * by an earlier worq, which fires as before.
   */
  gen?: string
  /** The next due time (epoch ms), or null when the schedule has ended. */
  next: number | null
  last?: number
  runs: number
}

/**
 * Whether a stored schedule reads as one: what the pools' scheduler and `broker.schedules()` need
 * of it. A definition written into a backend by something other than worq (or damaged) fails, and
 * the backends leave it out of what they read, as they do a definition that is not JSON.
 */
export function readableSchedule(s: unknown): s is StoredSchedule {
  if (typeof s !== 'object' || s === null) return false
  const o = s as Partial<Record<keyof StoredSchedule, unknown>>
  const when = o.when as { cron?: unknown; tz?: unknown; every?: unknown } | null | undefined
  const timing =
    typeof when === 'object' &&
    when !== null &&
    (typeof when.cron === 'string'
      ? when.tz === undefined || typeof when.tz === 'string'
      : typeof when.every === 'number' && when.every > 0)
  const optional = (v: unknown) => v === undefined || typeof v === 'number'
  return (
    timing &&
    typeof o.id === 'string' &&
    typeof o.name === 'string' &&
    typeof o.task === 'object' &&
    o.task !== null &&
    (o.next === null || Number.isFinite(o.next)) &&
    Number.isFinite(o.runs) &&
    optional(o.last) &&
    optional(o.startAt) &&
    optional(o.endAt) &&
    optional(o.limit)
  )
}

/** The kinds of queue events (docs/events.md). */
export type EventType =
  | 'enqueued'
  | 'started'
  | 'progress'
  | 'completed'
  | 'failed'
  | 'retrying'
  | 'expired'
  | 'cancelled'
  | 'cached'
  | 'paused'
  | 'resumed'

/** One event as a backend keeps it. */
export interface StoredEvent {
  /** Increasing per queue; a reader resumes after it. */
  eventId: string
  type: EventType
  /** The task ('' for `paused` and `resumed`). */
  id: string
  name: string
  /** Epoch ms. */
  time: number
  attempt?: number
  workerId?: string
  /** `progress`: the value, serialized. */
  progress?: string
  /** `failed`, `expired`, `cancelled`: what went wrong (the outcome's remote error). */
  error?: { name: string; message: string; code?: string }
  /** End events: ms the run took. */
  ms?: number
  /** `retrying`: ms until the next attempt. */
  delay?: number
  /** `enqueued`: put back in line unstarted by the worker that had taken it. */
  released?: boolean
}

/** A batch of events read from a queue's stream. */
export interface EventBatch {
  events: StoredEvent[]
  /** Events after the reader's position were dropped (the stream keeps the last N). */
  gap: boolean
  /** The position to read on from. */
  last: string
}

/** Counts of one minute of a queue. */
export interface MinuteCounts {
  /** Epoch ms of the minute's start. */
  minute: number
  completed: number
  failed: number
  retried: number
  expired: number
  cancelled: number
  /** Tasks by wait time (ready → started): count per bucket of {@link TIME_BUCKETS_MS}, then over. */
  wait: number[]
  /** Runs by run time (started → ended), as `wait`. */
  run: number[]
  /** Sums of the wait and run times, ms. */
  waitSum: number
  runSum: number
}
