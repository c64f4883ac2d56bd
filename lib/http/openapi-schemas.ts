/**
 * The schemas of the OpenAPI document (JSON Schema 2020-12, as OpenAPI 3.1 uses), one per type of
 * lib/http/types.ts.
 */
import { STATUSES } from './query.js'

/** The longest delay a task may be given, ms: 100 years (checkOptions() says so at the call). */
const MAX_DURATION_MS = 3_153_600_000_000
/** The longest timer-like duration (resultTimeout), ms: 2^31 − 1, about 24.8 days. */
const MAX_TIMER_MS = 2_147_483_647

const str = { type: 'string' }
const int = { type: 'integer' }
const num = { type: 'number' }
const bool = { type: 'boolean' }
const date = { type: 'string', format: 'date-time' }
const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` })

const taskError = {
  type: 'object',
  required: ['name', 'message'],
  properties: { name: str, message: str, stack: str, code: str },
}

/** `components.schemas`. */
export const schemas = {
  Error: {
    type: 'object',
    required: ['error'],
    properties: {
      error: {
        type: 'object',
        required: ['code', 'message'],
        properties: { code: str, message: str },
      },
    },
  },
  WireValue: {
    description:
      'A task value: plain JSON as it is, or { "$superjson": { json, meta } } for what JSON cannot carry (Date, Map, Set, BigInt, undefined, Error…). A request\'s tagged values are bounded (docs/http.md, "Values"): BigInts of at most 2048 characters, shared references that do not multiply the value (400 ERR_WORQ_HTTP_VALUE_LIMIT past them).',
  },
  TaskError: taskError,
  Task: {
    type: 'object',
    required: [
      'id',
      'name',
      'queue',
      'status',
      'priority',
      'metadata',
      'attempt',
      'attempts',
      'createdAt',
      'cached',
    ],
    properties: {
      id: str,
      name: str,
      queue: str,
      status: { enum: [...STATUSES] },
      priority: int,
      progress: ref('WireValue'),
      metadata: { type: 'object' },
      attempt: int,
      attempts: int,
      createdAt: date,
      runAt: date,
      startedAt: date,
      finishedAt: date,
      workerId: str,
      value: ref('WireValue'),
      error: ref('TaskError'),
      cached: bool,
      args: { type: 'array', items: ref('WireValue') },
    },
  },
  Submit: {
    type: 'object',
    required: ['name'],
    additionalProperties: false,
    properties: {
      queue: str,
      name: {
        type: 'string',
        description: 'A dotted task name; no segment may be "then" (a queue is not a promise).',
        maxLength: 256,
        pattern: '^(?!(?:[^.]*\\.)*then(?:\\.|$))[A-Za-z_$][\\w$-]*(\\.[A-Za-z_$][\\w$-]*)*$',
      },
      args: { type: 'array', items: ref('WireValue'), maxItems: 1000 },
      options: {
        type: 'object',
        additionalProperties: false,
        properties: {
          priority: int,
          delay: { type: 'number', minimum: 0, maximum: MAX_DURATION_MS },
          attempts: { type: 'integer', minimum: 1, maximum: 1_000_000 },
          id: { type: 'string', minLength: 1, maxLength: 256 },
          metadata: { type: 'object' },
          resultTimeout: { type: 'number', minimum: 1, maximum: MAX_TIMER_MS },
        },
      },
    },
  },
  Queue: {
    type: 'object',
    required: [
      'name',
      'waiting',
      'delayed',
      'pending',
      'processing',
      'paused',
      'workers',
      'oldestWaitingMs',
    ],
    properties: {
      name: str,
      waiting: int,
      delayed: int,
      pending: int,
      processing: int,
      paused: bool,
      workers: int,
      oldestWaitingMs: { type: ['number', 'null'] },
    },
  },
  Worker: {
    type: 'object',
    required: [
      'queue',
      'id',
      'hostname',
      'pid',
      'concurrency',
      'running',
      'startedAt',
      'seenAt',
      'names',
      'tasks',
    ],
    properties: {
      queue: str,
      id: str,
      hostname: str,
      pid: int,
      concurrency: int,
      running: int,
      startedAt: date,
      seenAt: date,
      names: { type: 'array', items: str },
      tasks: { type: 'array', items: str },
    },
  },
  Type: { type: 'object', required: ['name', 'workers'], properties: { name: str, workers: int } },
  Schedule: {
    type: 'object',
    required: ['id', 'name', 'runs'],
    properties: {
      id: str,
      name: str,
      cron: str,
      tz: str,
      every: num,
      next: date,
      last: date,
      runs: int,
    },
  },
  Limit: {
    type: 'object',
    properties: {
      concurrency: int,
      rate: { type: 'object', required: ['max', 'per'], properties: { max: int, per: num } },
    },
  },
  Health: {
    type: 'object',
    required: ['ok', 'backend', 'latencyMs'],
    properties: { ok: bool, backend: str, latencyMs: num },
  },
  Config: {
    type: 'object',
    required: ['queues', 'readOnly', 'version'],
    properties: { queues: { type: 'array', items: str }, readOnly: bool, version: str },
  },
  Minute: {
    type: 'object',
    required: ['completed', 'failed', 'retried', 'expired', 'cancelled'],
    properties: {
      time: date,
      completed: int,
      failed: int,
      retried: int,
      expired: int,
      cancelled: int,
    },
  },
  Metrics: {
    type: 'object',
    required: ['queue', 'minutes', 'totals'],
    properties: {
      queue: str,
      minutes: { type: 'array', items: ref('Minute') },
      totals: ref('Minute'),
    },
  },
  Event: {
    type: 'object',
    required: ['type', 'id', 'name', 'queue', 'time', 'eventId'],
    properties: {
      type: {
        enum: [
          'enqueued',
          'started',
          'progress',
          'completed',
          'failed',
          'retrying',
          'expired',
          'cancelled',
          'cached',
          'paused',
          'resumed',
          'gap',
        ],
      },
      id: str,
      name: str,
      queue: str,
      time: date,
      eventId: str,
      attempt: int,
      workerId: str,
      ms: num,
      delay: num,
      released: bool,
      progress: ref('WireValue'),
      error: ref('TaskError'),
    },
  },
}
