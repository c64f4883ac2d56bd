/**
 * The task routes: list, submit, read, cancel and retry. Submitting goes through the public
 * client (`broker.queue()` and `task(fn, options)`), so a call from HTTP is the same call a program
 * makes, with the same checks. A retry makes a task run again, so the `submit` policy decides it
 * as it decides a new call.
 */
import { task, type Broker, type LooseQueue, type TaskFilter } from '../../index.js'
import { HttpError, badRequest } from '../errors.js'
import { taskJson } from '../json.js'
import { readJson } from '../body.js'
import { ageParam, intParam, nameParam, statusParam, TASK_NAME } from '../query.js'
import type { Context, Reply, Route } from '../router.js'
import { taskId } from '../served.js'
import type { SubmitJson } from '../types.js'
import { fromWire } from '../values.js'

/** The task options a submitted call may carry. */
const SUBMIT_OPTIONS = ['priority', 'delay', 'attempts', 'id', 'metadata', 'resultTimeout']
const SUBMIT_KEYS = ['queue', 'name', 'args', 'options']
/** Most arguments a submitted call may have. */
const MAX_ARGS = 1000

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

/** Checks the body of `POST /api/tasks`; a 400 names the field to change. */
export function checkSubmit(
  body: unknown,
): Required<Omit<SubmitJson, 'queue'>> & { queue?: string } {
  if (!isObject(body))
    throw badRequest(
      'Expected the body to be an object like { "name": "math.add", "args": [1, 2] }',
    )
  for (const k of Object.keys(body))
    if (!SUBMIT_KEYS.includes(k))
      throw badRequest(
        `unknown field ${JSON.stringify(k)} in the body; known: ${SUBMIT_KEYS.join(', ')}`,
      )
  const { queue, name, args = [], options = {} } = body
  if (queue !== undefined && typeof queue !== 'string')
    throw badRequest('Expected `queue` to be a string (a queue this server serves)')
  if (typeof name !== 'string' || name.length > 256 || !TASK_NAME.test(name))
    throw badRequest('Expected `name` to be a dotted task name like "math.add"')
  if (name.split('.').includes('then'))
    throw badRequest(
      `Expected \`name\` to have no segment "then", got ${JSON.stringify(name)}: a queue must not look like a promise, so no task is reached through "then"; rename the task or its namespace`,
    )
  if (!Array.isArray(args) || args.length > MAX_ARGS)
    throw badRequest(`Expected \`args\` to be an array of at most ${MAX_ARGS} arguments`)
  if (!isObject(options)) throw badRequest('Expected `options` to be an object of task options')
  for (const k of Object.keys(options))
    if (!SUBMIT_OPTIONS.includes(k))
      throw badRequest(
        `unknown task option \`${k}\`; a call from HTTP may set ${SUBMIT_OPTIONS.join(', ')}`,
      )
  if (options.id !== undefined && typeof options.id !== 'string')
    throw badRequest('Expected `options.id` to be a string')
  return {
    ...(queue !== undefined && { queue }),
    name,
    args,
    options: options as SubmitJson['options'] & object,
  }
}

/** 404 for an id `broker`'s queue does not know. */
function noSuchTask(broker: Broker): HttpError {
  return new HttpError(
    404,
    'ERR_WORQ_HTTP_NO_SUCH_TASK',
    `queue ${broker.name} knows no task with this id (never enqueued, or its record expired)`,
  )
}

/** Where a task of `broker`'s queue is read. */
function location(ctx: Context, broker: Broker, id: string): string {
  return `${ctx.prefix}/api/tasks/${encodeURIComponent(id)}?queue=${encodeURIComponent(broker.name)}`
}

/**
 * 201 with the task as the backend reports it now and its Location; only `{ id, queue }` when its
 * record is already gone (it ended with a `resultTimeout` shorter than this round trip).
 */
async function created(ctx: Context, broker: Broker, id: string): Promise<Reply> {
  const info = await broker.task(id)
  return {
    status: 201,
    headers: { Location: location(ctx, broker, id) },
    body: info ? taskJson(info) : { id, queue: broker.name },
  }
}

/** Enqueues `name(...args)` on `broker` through the public client. */
async function enqueue(
  broker: Broker,
  name: string,
  args: unknown[],
  options: Record<string, unknown>,
): Promise<string> {
  let fn: unknown = broker.queue()
  for (const part of name.split('.'))
    fn = typeof fn === 'function' ? (fn as unknown as Record<string, unknown>)[part] : undefined
  // checkSubmit lets through only names the queue reaches: anything else is a bug of this server.
  if (typeof fn !== 'function') throw new Error(`the queue does not reach a task named ${name}`)
  const deferred = await task(fn as LooseQueue, options)(...args)
  return deferred.id
}

export const taskRoutes: Route[] = [
  {
    method: 'GET',
    path: '/api/tasks',
    query: ['queue', 'status', 'name', 'limit', 'offset', 'olderThan', 'newerThan'],
    change: false,
    async handle({ served, query }) {
      const broker = served.broker(query.get('queue'))
      const filter: TaskFilter = {}
      const status = statusParam(query, 'status')
      if (status) filter.status = status
      const name = nameParam(query, 'name')
      if (name) filter.name = name
      const limit = intParam(query, 'limit', 1, 1000)
      if (limit !== undefined) filter.limit = limit
      const offset = intParam(query, 'offset', 0, 1_000_000)
      if (offset !== undefined) filter.offset = offset
      const olderThan = ageParam(query, 'olderThan')
      if (olderThan !== undefined) filter.olderThan = olderThan
      const newerThan = ageParam(query, 'newerThan')
      if (newerThan !== undefined) filter.newerThan = newerThan
      return { body: (await broker.tasks(filter)).map(taskJson) }
    },
  },
  {
    method: 'POST',
    path: '/api/tasks',
    query: [],
    change: true,
    async handle(ctx) {
      const { served, req } = ctx
      const { bodyLimit, bodyTimeoutMs } = served.options
      const submit = checkSubmit(await readJson(req, bodyLimit, bodyTimeoutMs))
      const broker = served.broker(submit.queue)
      await served.checkSubmit(broker, submit.name, req)
      const args = submit.args.map((a, i) => fromWire(a, `args[${i}]`))
      const id = await enqueue(broker, submit.name, args, submit.options)
      return created(ctx, broker, id)
    },
  },
  {
    method: 'GET',
    path: '/api/tasks/:id',
    query: ['queue'],
    change: false,
    async handle({ served, query, params }) {
      const broker = served.broker(query.get('queue'))
      const info = await broker.task(taskId(params.id))
      if (!info) throw noSuchTask(broker)
      return { body: taskJson(info) }
    },
  },
  {
    method: 'DELETE',
    path: '/api/tasks/:id',
    query: ['queue'],
    change: true,
    async handle({ served, query, params }) {
      const broker = served.broker(query.get('queue'))
      return { body: { cancelled: await broker.cancel(taskId(params.id)) } }
    },
  },
  {
    method: 'POST',
    path: '/api/tasks/:id/retry',
    query: ['queue'],
    change: true,
    async handle(ctx) {
      const broker = ctx.served.broker(ctx.query.get('queue'))
      const id = taskId(ctx.params.id)
      // A retry runs the task's name again: the submit policy decides, as for a new call.
      const info = await broker.task(id)
      if (!info) throw noSuchTask(broker)
      await ctx.served.checkSubmit(broker, info.name, ctx.req)
      // Undefined when its record expired since.
      const again = await broker.retry(id)
      if (again === undefined) throw noSuchTask(broker)
      return created(ctx, broker, again)
    },
  },
]
