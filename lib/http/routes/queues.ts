/**
 * The queue routes: counts, live workers, exposed task names, schedules, limits, metrics, and the
 * changes pause, resume and purge (which needs `?confirm=<queue name>`).
 */
import type { Broker } from '../../index.js'
import { badRequest } from '../errors.js'
import { metricsJson, queueJson, scheduleJson, workerJson } from '../json.js'
import { intParam } from '../query.js'
import type { Context, Route } from '../router.js'
import type { Served } from '../served.js'

/** The brokers a read names: the one of `?queue=`, or every served one when it is left out. */
function chosen(served: Served, queue: string | undefined): Broker[] {
  return queue === undefined ? [...served.brokers.values()] : [served.broker(queue)]
}

/** The broker of the `:name` path parameter. */
function named(ctx: Context): Broker {
  return ctx.served.broker(ctx.params.name)
}

export const queueRoutes: Route[] = [
  {
    method: 'GET',
    path: '/api/queues',
    query: [],
    change: false,
    async handle({ served }) {
      const brokers = [...served.brokers.values()]
      return {
        body: await Promise.all(brokers.map(async b => queueJson(b.name, await b.inspect()))),
      }
    },
  },
  {
    method: 'GET',
    path: '/api/workers',
    query: ['queue'],
    change: false,
    async handle({ served, query }) {
      const lists = await Promise.all(
        chosen(served, query.get('queue')).map(async b =>
          (await b.inspect()).workers.map(w => workerJson(b.name, w)),
        ),
      )
      return { body: lists.flat() }
    },
  },
  {
    method: 'GET',
    path: '/api/types',
    query: ['queue'],
    change: false,
    async handle({ served, query }) {
      return { body: await served.broker(query.get('queue')).types() }
    },
  },
  {
    method: 'GET',
    path: '/api/schedules',
    query: ['queue'],
    change: false,
    async handle({ served, query }) {
      return { body: (await served.broker(query.get('queue')).schedules()).map(scheduleJson) }
    },
  },
  {
    method: 'GET',
    path: '/api/limits',
    query: ['queue'],
    change: false,
    async handle({ served, query }) {
      return { body: await served.broker(query.get('queue')).limits() }
    },
  },
  {
    method: 'GET',
    path: '/api/metrics',
    query: ['queue', 'minutes'],
    change: false,
    async handle({ served, query }) {
      const broker = served.broker(query.get('queue'))
      const minutes = intParam(query, 'minutes', 1, 1440) ?? 60
      return { body: metricsJson(await broker.metrics({ minutes })) }
    },
  },
  {
    method: 'POST',
    path: '/api/queues/:name/pause',
    query: [],
    change: true,
    async handle(ctx) {
      await named(ctx).pause()
      return { body: { paused: true } }
    },
  },
  {
    method: 'POST',
    path: '/api/queues/:name/resume',
    query: [],
    change: true,
    async handle(ctx) {
      await named(ctx).resume()
      return { body: { paused: false } }
    },
  },
  {
    method: 'DELETE',
    path: '/api/queues/:name/tasks',
    query: ['confirm'],
    change: true,
    async handle(ctx) {
      const broker = named(ctx)
      if (ctx.query.get('confirm') !== broker.name)
        throw badRequest(
          `purging discards every waiting task of queue ${broker.name}: confirm with ?confirm=${encodeURIComponent(broker.name)}`,
          'ERR_WORQ_HTTP_CONFIRM',
        )
      return { body: { purged: await broker.purge() } }
    },
  },
]
