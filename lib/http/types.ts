/**
 * The JSON the HTTP API answers with (docs/http.md), as types. The dashboard page imports them
 * too, so the page and the server agree on every field. Dates are ISO strings; task values are
 * {@link WireValue}s.
 */

/** A JSON value. */
export type JsonValue =
  null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue }

/**
 * A value that plain JSON cannot carry (a Date, Map, Set, BigInt, undefined inside an array, an
 * Error…), in superjson's form: `json` is the value with those parts made JSON, `meta` says how to
 * revive them (`SuperJSON.deserialize({ json, meta })` does).
 */
export interface TaggedValue {
  /** superjson's `{ json, meta }`. */
  $superjson: {
    /** The value as JSON. */
    json: JsonValue
    /** How to revive the parts that are not JSON. */
    meta?: JsonValue
  }
}

/** A task's value (argument, result, progress) in the API: plain JSON as is, else tagged. */
export type WireValue = JsonValue | TaggedValue

/** The error body of every answer that is not a success. */
export interface ErrorJson {
  /** What went wrong. */
  error: {
    /** A stable code, e.g. `ERR_WORQ_HTTP_BAD_JSON` or `ERR_WORQ_DUPLICATE_TASK`. */
    code: string
    /** What went wrong and what to change. */
    message: string
  }
}

/** What went wrong with a task. */
export interface TaskErrorJson {
  /** The remote error's class name. */
  name: string
  /** Its message. */
  message: string
  /** Its stack, when it had one. */
  stack?: string
  /** Its `code`, when it had one. */
  code?: string
}

/** A task's statuses. */
export type TaskStatusJson =
  'pending' | 'enqueued' | 'processing' | 'completed' | 'failed' | 'expired' | 'cancelled'

/** `TaskInfo` as JSON. */
export interface TaskJson {
  /** The task id. */
  id: string
  /** The dotted task name. */
  name: string
  /** Its queue. */
  queue: string
  /** Where it is in its life. */
  status: TaskStatusJson
  /** Its priority (lower runs first). */
  priority: number
  /** Its latest progress, when it reported any. */
  progress?: WireValue
  /** Its `metadata` option. */
  metadata: Record<string, JsonValue>
  /** Runs started so far. */
  attempt: number
  /** Runs allowed in all. */
  attempts: number
  /** When it was enqueued. */
  createdAt: string
  /** When a held-back task may run. */
  runAt?: string
  /** When its latest run started. */
  startedAt?: string
  /** When it ended. */
  finishedAt?: string
  /** The worker that ran (or runs) it. */
  workerId?: string
  /** The result of a completed task (absent when it returned undefined). */
  value?: WireValue
  /** What went wrong, for a failed, expired or cancelled task. */
  error?: TaskErrorJson
  /** True when its result came from the result cache. */
  cached: boolean
  /** The call's arguments while the backend keeps them; a Deferred one as `{ $deferred: { queue, id } }`. */
  args?: WireValue[]
}

/** One queue's counts, as `GET /api/queues` lists them. */
export interface QueueJson {
  /** The queue name. */
  name: string
  /** Ready to run. */
  waiting: number
  /** Held back until a due time. */
  delayed: number
  /** Waiting for Deferred arguments. */
  pending: number
  /** Taken by a worker. */
  processing: number
  /** True while paused. */
  paused: boolean
  /** Live workers. */
  workers: number
  /** Age in ms of the oldest waiting task, or null. */
  oldestWaitingMs: number | null
}

/** A live worker. */
export interface WorkerJson {
  /** Its queue. */
  queue: string
  /** The worker's id. */
  id: string
  /** Its host. */
  hostname: string
  /** Its process id. */
  pid: number
  /** Tasks it runs at once, at most. */
  concurrency: number
  /** Tasks it runs now. */
  running: number
  /** When it started. */
  startedAt: string
  /** When it last reported in. */
  seenAt: string
  /** The task names it exposes. */
  names: string[]
  /** Ids of the tasks it runs now. */
  tasks: string[]
}

/** A task name live workers expose. */
export interface TypeJson {
  /** The dotted name. */
  name: string
  /** How many live workers expose it. */
  workers: number
}

/** A schedule. */
export interface ScheduleJson {
  /** Its id. */
  id: string
  /** The task it calls. */
  name: string
  /** Its cron expression. */
  cron?: string
  /** The cron expression's time zone. */
  tz?: string
  /** ms between runs. */
  every?: number
  /** Its next due time. */
  next?: string
  /** The last due time it ran for. */
  last?: string
  /** Runs so far. */
  runs: number
}

/** `GET /api/health`. */
export interface HealthJson {
  /** True when every served queue's backend answered. */
  ok: boolean
  /** The backend URL(s), each password replaced by `***`. */
  backend: string
  /** How long the slowest backend took to answer, ms. */
  latencyMs: number
}

/** `GET /api/config`: what the page needs to know of the server. */
export interface ConfigJson {
  /** The served queues. */
  queues: string[]
  /** True when every change answers 403. */
  readOnly: boolean
  /** worq's version. */
  version: string
}

/** Counts of one minute, in `GET /api/metrics`. */
export interface MinuteJson {
  /** The minute's start. */
  time: string
  /** Tasks that completed. */
  completed: number
  /** Tasks that failed for good. */
  failed: number
  /** Runs retried. */
  retried: number
  /** Tasks that expired. */
  expired: number
  /** Tasks cancelled. */
  cancelled: number
}

/** `GET /api/metrics`: `broker.metrics()` as JSON. */
export interface MetricsJson {
  /** The queue. */
  queue: string
  /** The minutes of the window that saw anything, oldest first. */
  minutes: MinuteJson[]
  /** Totals since the queue's metrics began. */
  totals: Omit<MinuteJson, 'time'>
}

/** An event of `GET /api/events`, as the `data:` of one Server-Sent Event. */
export interface EventJson {
  /** `enqueued`, `started`, `progress`, `completed`, `failed`, `retrying`, `expired`, `cancelled`, `cached`, `paused`, `resumed` or `gap`. */
  type: string
  /** The task id ('' for queue events). */
  id: string
  /** The task name ('' for queue events). */
  name: string
  /** The queue. */
  queue: string
  /** When it happened. */
  time: string
  /** The event's id in its queue. */
  eventId: string
  /** The run, where it has one. */
  attempt?: number
  /** The worker, where it has one. */
  workerId?: string
  /** ms the run took, where it ended one. */
  ms?: number
  /** ms until the next attempt, on `retrying`. */
  delay?: number
  /** On `enqueued`: a worker gave the task back unstarted (docs/events.md). */
  released?: boolean
  /** The reported progress, on `progress`. */
  progress?: WireValue
  /** What went wrong, on `failed`, `retrying`, `expired` and `cancelled`. */
  error?: TaskErrorJson
}

/** The body of `POST /api/tasks`. */
export interface SubmitJson {
  /** The queue; may be left out when the server serves one. */
  queue?: string
  /** The dotted task name. */
  name: string
  /** The arguments (values may be tagged). @default [] */
  args?: WireValue[]
  /** Task options. */
  options?: {
    /** Lower runs first. */
    priority?: number
    /** ms to hold it back. */
    delay?: number
    /** Runs allowed in all. */
    attempts?: number
    /** The task id (a duplicate of a live task answers 409). */
    id?: string
    /** A plain JSON object kept with the task. */
    metadata?: Record<string, JsonValue>
    /** ms the result is kept. */
    resultTimeout?: number
  }
}
