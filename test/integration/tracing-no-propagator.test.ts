/**
 * Tracing where the application registered a tracer provider and a context manager but no
 * propagator: worq writes the W3C `traceparent` itself, and its worker reads it itself, so the run
 * is still the call's child.
 */
import { expect } from 'chai'
import { SpanKind } from '@opentelemetry/api'
import { getBroker, WorkerPool } from '../../lib/index.js'
import { registerTracing, type SpanRecord } from '../helpers/tracing.js'
import { uniqueQueue, until } from '../helpers/util.js'

describe('tracing: no global propagator registered', () => {
  it('the run is parented to the call and linked to its arguments’ producers all the same', async () => {
    const spans: SpanRecord[] = []
    const unregister = registerTracing(s => spans.push(s), { propagator: false })
    const broker = getBroker('memory://', uniqueQueue('traced'))
    broker.expose(function add(a: number, b: number) {
      return a + b
    })
    const pool = new WorkerPool(broker, { concurrency: 2 })
    try {
      await pool.start()
      const q = broker.queue()
      const first = await q.add(1, 2)
      const second = await q.add(first, 3)
      expect(await second.result(5_000)).to.equal(6)
      await until(() => spans.filter(s => s.name === 'worq.run').length === 2, 5_000, 'two runs')
      const enqueues = spans.filter(s => s.name === 'worq.enqueue')
      const runs = spans.filter(s => s.name === 'worq.run')
      expect(enqueues.map(s => s.attributes['worq.task.attempt'])).to.deep.equal([1, 1])
      for (const [i, run] of runs.entries()) {
        const call = enqueues.find(
          e => e.attributes['messaging.message.id'] === run.attributes['messaging.message.id'],
        )!
        expect(run.kind).to.equal(SpanKind.CONSUMER)
        expect(run.traceId, `run ${i}: the call's trace`).to.equal(call.traceId)
        expect(run.parentSpanId, `run ${i}: the call's child`).to.equal(call.spanId)
      }
      const dependent = runs.find(r => r.attributes['messaging.message.id'] === second.id)!
      expect(dependent.links.map(l => l.spanId)).to.deep.equal([
        enqueues.find(e => e.attributes['messaging.message.id'] === first.id)!.spanId,
      ])
    } finally {
      await pool.stop()
      await broker.close()
      await unregister()
    }
  })
})
