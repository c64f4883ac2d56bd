/**
 * The OpenAPI 3.1 document of the API (`GET /api/openapi.json`). A test walks it against the route
 * table both ways and validates it, so it cannot drift from the routes.
 */
import { schemas } from './openapi-schemas.js'

type Param = {
  name: string
  in: 'query' | 'path'
  required?: boolean
  description: string
  schema: object
}

const queue: Param = {
  name: 'queue',
  in: 'query',
  description: 'The queue; may be left out when the server serves one.',
  schema: { type: 'string' },
}
const idParam: Param = {
  name: 'id',
  in: 'path',
  required: true,
  description: 'The task id (1–256 characters, no control characters), percent-encoded.',
  schema: { type: 'string', minLength: 1, maxLength: 256 },
}
const nameParam: Param = {
  name: 'name',
  in: 'path',
  required: true,
  description: 'The queue name.',
  schema: { type: 'string' },
}
const q = (name: string, description: string, schema: object = { type: 'string' }): Param => ({
  name,
  in: 'query',
  description,
  schema,
})

const json = (schema: object) => ({ 'application/json': { schema } })
const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` })
const list = (name: string) => ({ type: 'array', items: ref(name) })
const error = (description: string) => ({ description, content: json(ref('Error')) })

/** The answers every route may give besides its own (a route's own description of one wins). */
const common: Record<string, unknown> = {
  '400': error('A bad parameter or body; the message names it.'),
  '401': error('A token is needed: Authorization: Bearer <token>.'),
  '403': error(
    'Not allowed: `authorize` refused it, the server is read-only, or the task name may not be enqueued.',
  ),
  '404': error('No such queue (or task).'),
  '405': {
    description: 'The path takes another method; `Allow` lists the ones it takes.',
    headers: { Allow: { description: 'The methods the path takes.', schema: { type: 'string' } } },
    content: json(ref('Error')),
  },
  '500': error('The server failed (ERR_WORQ_HTTP_INTERNAL); its onError was told why.'),
  '503': error(
    'The backend cannot do it now, with the library\'s code: ERR_WORQ_BACKEND_UNREACHABLE, ERR_WORQ_BACKEND_FULL, ERR_WORQ_CLOSED, … (docs/http.md, "Errors").',
  ),
}

function op(summary: string, parameters: Param[], ok: Record<string, unknown>, extra: object = {}) {
  const responses = { ...ok }
  for (const [status, answer] of Object.entries(common)) responses[status] ??= answer
  return { summary, parameters, responses, ...extra }
}

const okJson = (description: string, schema: object) => ({
  '200': { description, content: json(schema) },
})
const created = {
  '201': {
    description:
      'Enqueued: the new task, with its Location; only { id, queue } when the task ended and its record went before the answer (a resultTimeout shorter than that).',
    headers: { Location: { description: 'Where the task is read.', schema: { type: 'string' } } },
    content: json({
      oneOf: [
        ref('Task'),
        {
          type: 'object',
          required: ['id', 'queue'],
          additionalProperties: false,
          properties: { id: { type: 'string' }, queue: { type: 'string' } },
        },
      ],
    }),
  },
  '504': error(
    'Enqueued on the Redis master, but fewer replicas than its `replicas` option confirmed it in time (ERR_WORQ_REPLICATION_TIMEOUT).',
  ),
}

/**
 * `paths` with a HEAD beside each GET: the same operation, whose answers have GET's status and
 * headers and no body (the event stream's HEAD ends after its headers).
 */
function withHead(paths: Record<string, Record<string, ReturnType<typeof op>>>): object {
  for (const ops of Object.values(paths)) {
    const get = ops.get
    if (!get) continue
    const responses: Record<string, unknown> = {}
    for (const [status, answer] of Object.entries(get.responses)) {
      const { content: _body, ...rest } = answer as { content?: unknown }
      responses[status] = rest
    }
    ops.head = { ...get, summary: `${get.summary} (its headers only)`, responses }
  }
  return paths
}

/** The OpenAPI document. */
export function openApiDocument(version: string): object {
  return {
    openapi: '3.1.0',
    info: {
      title: 'worq HTTP API',
      version,
      description:
        'The control API of worq queues (docs/http.md). Every answer is JSON; errors are { "error": { "code", "message" } }. Every GET path answers HEAD with its status and headers and no body.',
    },
    security: [{ bearer: [] }],
    paths: withHead({
      '/api/health': {
        get: op('Whether every backend answers', [], {
          ...okJson('Every backend answered.', ref('Health')),
          '503': { description: 'A backend did not answer.', content: json(ref('Health')) },
        }),
      },
      '/api/config': {
        get: op(
          'The served queues and whether the server is read-only',
          [],
          okJson('The configuration.', ref('Config')),
        ),
      },
      '/api/queues': {
        get: op("Each served queue's counts", [], okJson('The queues.', list('Queue'))),
      },
      '/api/tasks': {
        get: op(
          'Tasks of a queue, newest first',
          [
            queue,
            q('status', 'One status or several, comma-separated.'),
            q('name', 'A dotted task name, or a prefix ending in "."'),
            q('limit', 'At most this many (1–1000, default 100).', {
              type: 'integer',
              minimum: 1,
              maximum: 1000,
            }),
            q('offset', 'Skip this many first (0–1 000 000).', {
              type: 'integer',
              minimum: 0,
              maximum: 1_000_000,
            }),
            q('olderThan', 'Created more than this many ms ago, or before this ISO date.'),
            q('newerThan', 'Created less than this many ms ago, or after this ISO date.'),
          ],
          { ...okJson('The tasks.', list('Task')), '409': error("The queue's listing is off.") },
        ),
        post: op(
          'Enqueue a call',
          [],
          {
            ...created,
            '409': error('A live task has this id.'),
            '413': error('The body is over the limit (1 MiB by default).'),
            '415': error('The body is not application/json.'),
          },
          { requestBody: { required: true, content: json(ref('Submit')) } },
        ),
      },
      '/api/tasks/{id}': {
        get: op('One task', [idParam, queue], okJson('The task.', ref('Task'))),
        delete: op(
          'Cancel a pending, enqueued or running task',
          [idParam, queue],
          okJson('Whether this call cancelled it.', {
            type: 'object',
            required: ['cancelled'],
            properties: { cancelled: { type: 'boolean' } },
          }),
        ),
      },
      '/api/tasks/{id}/retry': {
        post: op('Enqueue a failed, expired or cancelled task again (new id)', [idParam, queue], {
          ...created,
          '403': error(
            "Not allowed: the task's name is one the `submit` option does not let be enqueued, `authorize` refused it, or the server is read-only.",
          ),
          '409': error(
            'The task has not failed, expired or been cancelled, or its call was not kept.',
          ),
        }),
      },
      '/api/types': {
        get: op('Task names live workers expose', [queue], okJson('The names.', list('Type'))),
      },
      '/api/workers': {
        get: op(
          'Live workers (of every served queue when queue is left out)',
          [queue],
          okJson('The workers.', list('Worker')),
        ),
      },
      '/api/schedules': {
        get: op("A queue's schedules", [queue], okJson('The schedules.', list('Schedule'))),
      },
      '/api/limits': {
        get: op(
          "A queue's limits, by name",
          [queue],
          okJson('The limits.', { type: 'object', additionalProperties: ref('Limit') }),
        ),
      },
      '/api/metrics': {
        get: op(
          'Per-minute counts and totals',
          [
            queue,
            q('minutes', 'The window, 1–1440 minutes (default 60).', {
              type: 'integer',
              minimum: 1,
              maximum: 1440,
            }),
          ],
          okJson('The metrics.', ref('Metrics')),
        ),
      },
      '/api/queues/{name}/pause': {
        post: op(
          'Pause a queue (running tasks finish)',
          [nameParam],
          okJson('Paused.', { type: 'object', properties: { paused: { const: true } } }),
        ),
      },
      '/api/queues/{name}/resume': {
        post: op(
          'Resume a queue',
          [nameParam],
          okJson('Resumed.', { type: 'object', properties: { paused: { const: false } } }),
        ),
      },
      '/api/queues/{name}/tasks': {
        delete: op(
          "Purge a queue's waiting tasks",
          [nameParam, { ...q('confirm', 'The queue name again, to confirm.'), required: true }],
          okJson('How many were purged.', {
            type: 'object',
            required: ['purged'],
            properties: { purged: { type: 'integer' } },
          }),
        ),
      },
      '/api/events': {
        get: op(
          'Server-Sent Events of the queue (every served queue when queue is left out); resumable with Last-Event-ID',
          [queue],
          {
            '200': {
              description: 'One `data:` line of JSON (an Event) per event, with an `id:` line.',
              content: { 'text/event-stream': { schema: { type: 'string' } } },
            },
            '503': error(
              'Too many event streams are open (ERR_WORQ_HTTP_BUSY, with Retry-After), the handler was closed (ERR_WORQ_HTTP_CLOSED), or the backend cannot do it now.',
            ),
          },
        ),
      },
      '/api/openapi.json': {
        get: op('This document', [], okJson('The OpenAPI document.', { type: 'object' })),
      },
      '/metrics': {
        get: op('Prometheus metrics of the served queues', [], {
          '200': {
            description: 'The Prometheus text format.',
            content: { 'text/plain': { schema: { type: 'string' } } },
          },
        }),
      },
    }),
    components: {
      securitySchemes: {
        bearer: {
          type: 'http',
          scheme: 'bearer',
          description: 'The token the server was started with, when it has one.',
        },
      },
      schemas,
    },
  }
}
