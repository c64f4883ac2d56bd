/**
 * The queue events a reader gets from `broker.events()` (docs/events.md): one discriminated union on
 * `type`. Every event has `{ type, id, name, queue, time, eventId }`; the rest fits its type.
 */

/** What every queue event has. */
export interface EventBase {
  /** The task's id ('' for `paused`, `resumed` and `gap`). */
  id: string
  /** The task's dotted name ('' for `paused`, `resumed` and `gap`). */
  name: string
  /** The queue. */
  queue: string
  /** When it happened. */
  time: Date
  /** Increasing per queue; `broker.events({ since: eventId })` resumes after it. */
  eventId: string
}

/** What went wrong, on `failed`, `retrying`, `expired` and `cancelled`. */
export interface EventError {
  /** The remote error's class name (`TypeError`, `TaskExpired`, …). */
  name: string
  /** Its message. */
  message: string
  /** Its `code`, when it had one. */
  code?: string
}

/**
 * A task was enqueued, or put back in line unstarted by the worker that had taken it (`released`).
 */
export interface EnqueuedEvent extends EventBase {
  /** The event's type. */
  type: 'enqueued'
  /**
   * Set when a worker gave the task back without starting it (a pool that stopped or paused
   * holding it ahead of a free slot, a handover its worker never took): its `started` event was
   * not followed by a run, and the next `started` has the same attempt. Absent on a new task.
   */
  released?: true
  /** With `released`: the attempt the worker had taken it for (the next run's too). */
  attempt?: number
  /** With `released`: the worker that gave it back. */
  workerId?: string
}

/** A worker took a task (its run starts at once, unless the worker holds it ahead). */
export interface StartedEvent extends EventBase {
  /** The event's type. */
  type: 'started'
  /** 1 for the first run. */
  attempt: number
  /** The worker that took it. */
  workerId: string
}

/** A running task reported progress. */
export interface ProgressEvent extends EventBase {
  /** The event's type. */
  type: 'progress'
  /** The run reporting it (1 for the first). */
  attempt: number
  /** The worker running it. */
  workerId: string
  /** The value the task passed to `this.progress()`. */
  progress: unknown
}

/** A task completed. */
export interface CompletedEvent extends EventBase {
  /** The event's type. */
  type: 'completed'
  /** The run that completed (1 for the first). */
  attempt: number
  /** The worker that ran it. */
  workerId: string
  /** ms the run took. */
  ms: number
}

/** A task failed for good (a throw with no attempts left, or a failed Deferred argument). */
export interface FailedEvent extends EventBase {
  /** The event's type. */
  type: 'failed'
  /** Runs made (0 when it failed without running: a failed argument). */
  attempt: number
  /** The worker that ran it, when it ran. */
  workerId?: string
  /** ms the run took, when it ran. */
  ms?: number
  /** What went wrong. */
  error: EventError
}

/** A run failed (or its lease lapsed) and the task will run again after `delay` ms. */
export interface RetryingEvent extends EventBase {
  /** The event's type. */
  type: 'retrying'
  /** The attempt that failed. */
  attempt: number
  /** The worker that ran it. */
  workerId?: string
  /** ms until the next attempt may start. */
  delay: number
  /** ms the failed run took. */
  ms?: number
  /** What went wrong (for a lapsed lease: `TaskExpired`). */
  error: EventError
}

/** A task's worker stopped renewing its lease and no attempt was left. */
export interface ExpiredEvent extends EventBase {
  /** The event's type. */
  type: 'expired'
  /** Runs made. */
  attempt: number
  /** The worker whose lease lapsed. */
  workerId?: string
  /** ms from its run's start until it was given up, when it had started. */
  ms?: number
  /** Why it expired. */
  error: EventError
}

/** A task was cancelled (before it ran, or while it ran). */
export interface CancelledEvent extends EventBase {
  /** The event's type. */
  type: 'cancelled'
  /** Runs started (0 when it was cancelled before it ran). */
  attempt: number
  /** The worker running it, when it was cancelled while it ran. */
  workerId?: string
  /** ms it had run, when it was cancelled while it ran. */
  ms?: number
  /** `TaskCancelled`. */
  error: EventError
}

/** A task completed with a cached result (docs/cache.md): its function did not run. */
export interface CachedEvent extends EventBase {
  /** The event's type. */
  type: 'cached'
}

/** The queue was paused. */
export interface PausedEvent extends EventBase {
  /** The event's type. */
  type: 'paused'
}

/** The queue was resumed. */
export interface ResumedEvent extends EventBase {
  /** The event's type. */
  type: 'resumed'
}

/**
 * Events after the reader's position were dropped before it read them (the backend keeps the last
 * `eventsMax`): whatever the reader keeps track of must be read afresh (`broker.tasks()`).
 */
export interface GapEvent extends EventBase {
  /** The event's type. */
  type: 'gap'
}

/** Every queue event. */
export type QueueEvent =
  | EnqueuedEvent
  | StartedEvent
  | ProgressEvent
  | CompletedEvent
  | FailedEvent
  | RetryingEvent
  | ExpiredEvent
  | CancelledEvent
  | CachedEvent
  | PausedEvent
  | ResumedEvent
  | GapEvent

/** The event types. */
export type QueueEventType = QueueEvent['type']

/** The event of type `T`. */
export type QueueEventOf<T extends QueueEventType> = Extract<
  QueueEvent,
  {
    /** The event's type. */
    type: T
  }
>
