/**
 * OpenTelemetry from the caller to the worker: the SDK registered here (the caller) and in a
 * `worq worker` process (the worker), one trace across both.
 */
import { expect } from 'chai'
import { Redis } from 'ioredis'
import { SpanKind, SpanStatusCode, context, trace } from '@opentelemetry/api'
import { getBroker, type Broker } from '../../lib/index.js'
import { killAll, worq } from '../helpers/cli.js'
import { redisUrl } from '../helpers/redis-server.js'
import { registerTracing, type SpanRecord } from '../helpers/tracing.js'
import { uniqueQueue, until } from '../helpers/util.js'
import type { traced } from '../fixtures/traced-tasks.js'

const TASKS = new URL('../fixtures/traced-tasks.ts', import.meta.url).pathname

describe('tracing: OpenTelemetry from caller to worker', function () {
  let url: string
  let side: Redis
  let broker: Broker
  let unregister: () => Promise<void>
  const mine: SpanRecord[] = []
  let list: string

  before(async () => {
    url = await redisUrl()
    side = new Redis(url)
    const queue = uniqueQueue('traced')
    list = `test:{${queue}}:spans`
    unregister = registerTracing(s => mine.push(s))
    broker = getBroker(url, queue)
    process.env.WORQ_TEST_SIDE_URL = url
    process.env.WORQ_TEST_SPANS = list
    const w = worq(['worker', url, '--tasks', TASKS, '--queue', queue])
    await w.line(/worker:start/)
  })
  after(async () => {
    killAll()
    await broker.close()
    await side.del(list)
    side.disconnect()
    await unregister()
  })

  async function workerSpans(n: number): Promise<SpanRecord[]> {
    await until(async () => (await side.llen(list)) >= n, 10_000, `${n} worker spans`)
    return (await side.lrange(list, 0, -1)).map(s => JSON.parse(s) as SpanRecord)
  }

  it('one trace from the request that enqueued a task to the function that ran it', async () => {
    const q = broker.queue<typeof traced>()
    const request = trace.getTracer('app').startSpan('http.request')
    const ctx = trace.setSpan(context.active(), request)
    const d = await context.with(ctx, () => q.traced.nested(4))
    request.end()
    expect(await d.result(10_000)).to.equal(4)
    const producer = mine.find(
      s => s.name === 'worq.enqueue' && s.attributes['messaging.message.id'] === d.id,
    )!
    expect(producer.kind).to.equal(SpanKind.PRODUCER)
    expect(producer.parentSpanId).to.equal(request.spanContext().spanId)
    expect(producer.traceId).to.equal(request.spanContext().traceId)
    expect(producer.attributes).to.deep.include({
      'messaging.system': 'worq',
      'messaging.destination.name': broker.name,
      'messaging.message.id': d.id,
      'messaging.operation.type': 'send',
      'worq.task.name': 'traced.nested',
    })
    const spans = await workerSpans(2)
    const run = spans.find(
      s => s.name === 'worq.run' && s.attributes['messaging.message.id'] === d.id,
    )!
    expect(run.kind).to.equal(SpanKind.CONSUMER)
    expect(run.traceId).to.equal(request.spanContext().traceId)
    expect(run.parentSpanId).to.equal(producer.spanId)
    expect(run.attributes).to.deep.include({
      'messaging.system': 'worq',
      'messaging.destination.name': broker.name,
      'messaging.operation.type': 'process',
      'worq.task.name': 'traced.nested',
      'worq.task.attempt': 1,
    })
    expect(run.status.code).to.equal(SpanStatusCode.UNSET)
    const inner = spans.find(s => s.name === 'app.work')!
    expect(inner.parentSpanId).to.equal(run.spanId)
    expect(inner.traceId).to.equal(run.traceId)
  })

  it('a failed run sets the span status and records the exception', async () => {
    const d = await broker.queue<typeof traced>().traced.fails()
    await d.wait(10_000)
    await until(
      async () => {
        const all = (await side.lrange(list, 0, -1)).map(s => JSON.parse(s) as SpanRecord)
        return all.some(s => s.attributes['messaging.message.id'] === d.id)
      },
      10_000,
      'the failed run span',
    )
    const run = (await side.lrange(list, 0, -1))
      .map(s => JSON.parse(s) as SpanRecord)
      .find(s => s.attributes['messaging.message.id'] === d.id)!
    expect(run.status).to.deep.include({ code: SpanStatusCode.ERROR, message: 'traced failure' })
    expect(run.events).to.include('exception')
  })

  it("a dependent's run links to the producers of its Deferred arguments", async () => {
    const q = broker.queue<typeof traced>()
    const a = await q.traced.add(1, 2)
    const b = await q.traced.add(3, 4)
    const sum = await q.traced.add(a, b)
    expect(await sum.result(10_000)).to.equal(10)
    const producerOf = (id: string) =>
      mine.find(s => s.name === 'worq.enqueue' && s.attributes['messaging.message.id'] === id)!
    await until(
      async () => {
        const all = (await side.lrange(list, 0, -1)).map(s => JSON.parse(s) as SpanRecord)
        return all.some(s => s.attributes['messaging.message.id'] === sum.id)
      },
      10_000,
      'the dependent run span',
    )
    const run = (await side.lrange(list, 0, -1))
      .map(s => JSON.parse(s) as SpanRecord)
      .find(s => s.name === 'worq.run' && s.attributes['messaging.message.id'] === sum.id)!
    const linked = run.links.map(l => l.spanId).sort()
    expect(linked).to.deep.equal([producerOf(a.id).spanId, producerOf(b.id).spanId].sort())
    expect(run.parentSpanId).to.equal(producerOf(sum.id).spanId)
  })
})
