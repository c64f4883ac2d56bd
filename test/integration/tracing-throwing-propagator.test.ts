/**
 * Tracing where the application's global propagator throws (a broken or hostile one): the call is
 * still enqueued and the run still runs, as the call's child, through the W3C form worq writes and
 * reads itself. Telemetry never fails the work it observes.
 */
import { expect } from 'chai'
import { propagation, type TextMapPropagator } from '@opentelemetry/api'
import { W3CTraceContextPropagator } from '@opentelemetry/core'
import { getBroker, WorkerPool } from '../../lib/index.js'
import { registerTracing, type SpanRecord } from '../helpers/tracing.js'
import { uniqueQueue, until } from '../helpers/util.js'

/** The W3C propagator, but `on` throws (inject after writing half its header). */
function throwing(on: 'inject' | 'extract'): TextMapPropagator {
  const w3c = new W3CTraceContextPropagator()
  return {
    inject(ctx, carrier, setter) {
      if (on !== 'inject') return w3c.inject(ctx, carrier, setter)
      setter.set(carrier, 'traceparent', '00-half-written')
      throw new Error('the propagator failed to inject')
    },
    extract(ctx, carrier, getter) {
      if (on === 'extract') throw new Error('the propagator failed to extract')
      return w3c.extract(ctx, carrier, getter)
    },
    fields: () => w3c.fields(),
  }
}

describe('tracing: a global propagator that throws', () => {
  for (const on of ['inject', 'extract'] as const)
    it(`a propagator whose ${on} throws neither fails the call nor crashes or strands the run`, async () => {
      const spans: SpanRecord[] = []
      const unregister = registerTracing(s => spans.push(s), { propagator: false })
      propagation.setGlobalPropagator(throwing(on))
      const broker = getBroker('memory://', uniqueQueue('traced'))
      broker.expose(function add(a: number, b: number) {
        return a + b
      })
      const pool = new WorkerPool(broker, { concurrency: 2 })
      const errors: Error[] = []
      pool.on('pool:error', err => errors.push(err))
      try {
        await pool.start()
        const d = await broker.queue().add(1, 2)
        expect(await d.result(5_000)).to.equal(3)
        await until(() => spans.some(s => s.name === 'worq.run'), 5_000, 'the run span')
        const call = spans.find(s => s.name === 'worq.enqueue')!
        const run = spans.find(s => s.name === 'worq.run')!
        expect(run.traceId).to.equal(call.traceId)
        expect(run.parentSpanId).to.equal(call.spanId)
        expect(errors).to.deep.equal([])
      } finally {
        await pool.stop()
        await broker.close()
        await unregister()
      }
    })
})
