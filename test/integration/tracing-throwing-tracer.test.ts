/**
 * Tracing where the application's global tracer provider throws (a broken or hostile SDK): from
 * `getTracer`, from `startSpan`, or from a method of the spans it makes. The call is still enqueued,
 * the run still runs and ends as it would untraced, and nothing reaches the process as an
 * unhandled rejection or an uncaught exception (the root hooks fail the run on either).
 */
import { expect } from 'chai'
import {
  context,
  propagation,
  trace,
  type Span,
  type Tracer,
  type TracerProvider,
} from '@opentelemetry/api'
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks'
import { W3CTraceContextPropagator } from '@opentelemetry/core'
import { BasicTracerProvider, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base'
import { TaskFailure, getBroker, task, WorkerPool } from '../../lib/index.js'
import { backends } from '../helpers/backends.js'
import { record, type SpanRecord } from '../helpers/tracing.js'
import { uniqueQueue, until } from '../helpers/util.js'

/** What throws: the provider's `getTracer`, the tracer's `startSpan`, or one method of a span. */
type Fault = 'getTracer' | 'startSpan' | keyof Span | 'every span method'

const FAULTS: Fault[] = [
  'getTracer',
  'startSpan',
  'isRecording',
  'spanContext',
  'addLinks',
  'setAttribute',
  'recordException',
  'setStatus',
  'end',
  'every span method',
]

/** A real SDK provider whose `fault` throws; the spans it ends go to `exported`. */
function throwing(
  fault: Fault,
  exported: SpanRecord[],
): { provider: TracerProvider; made: () => number } {
  const real = new BasicTracerProvider({
    spanProcessors: [
      new SimpleSpanProcessor({
        export(spans, done) {
          for (const s of spans) exported.push(record(s))
          done({ code: 0 })
        },
        async shutdown() {},
      }),
    ],
  })
  let made = 0
  const boom = (what: string) => {
    throw new Error(`the tracer failed in ${what}`)
  }
  const hostile = (span: Span): Span =>
    new Proxy(span, {
      get(target, key, receiver) {
        const v = Reflect.get(target, key, receiver) as unknown
        if (typeof v !== 'function') return v
        if (fault === 'every span method' || key === fault) return () => boom(`span.${String(key)}`)
        return (v as (...a: unknown[]) => unknown).bind(target)
      },
    })
  const provider: TracerProvider = {
    getTracer(name, version) {
      if (fault === 'getTracer') boom('getTracer')
      const tracer = real.getTracer(name, version)
      const wrapped: Tracer = {
        startSpan(n, options, ctx) {
          if (fault === 'startSpan') boom('startSpan')
          made++
          return hostile(tracer.startSpan(n, options, ctx))
        },
        startActiveSpan: tracer.startActiveSpan.bind(tracer) as Tracer['startActiveSpan'],
      }
      return wrapped
    },
  }
  return { provider, made: () => made }
}

for (const backend of backends)
  describe(`tracing: a global tracer provider that throws [${backend.name}]`, () => {
    let url: string
    before(async () => {
      url = await backend.url()
    })
    afterEach(() => {
      trace.disable()
      propagation.disable()
      context.disable()
    })

    for (const fault of FAULTS)
      it(`a tracer whose ${fault} throws fails no call and no run, and crashes nothing`, async () => {
        const exported: SpanRecord[] = []
        const { provider, made } = throwing(fault, exported)
        trace.setGlobalTracerProvider(provider)
        propagation.setGlobalPropagator(new W3CTraceContextPropagator())
        context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable())
        const broker = getBroker(url, uniqueQueue('traced'))
        broker.expose(function add(a: number, b: number) {
          // The task's own use of the active span (worq's run span) meets the fault too.
          try {
            trace.getActiveSpan()?.setAttribute('app.sum', a + b)
          } catch {
            // The application's own call: its failure is the application's to handle.
          }
          return a + b
        })
        broker.expose(function boom(): never {
          throw new Error('the task failed')
        })
        const pool = new WorkerPool(broker, { concurrency: 2 })
        const errors: Error[] = []
        pool.on('pool:error', err => errors.push(err))
        try {
          await pool.start()
          const q = broker.queue()
          const first = await q.add(1, 2)
          // A Deferred argument: the dependent's spans link to its producer.
          const second = await q.add(first, 4)
          const failed = await task(q.boom, { attempts: 1 })()
          expect(await first.result(5_000)).to.equal(3)
          expect(await second.result(5_000)).to.equal(7)
          const err = await failed.result(5_000).then(
            () => expect.fail('the failing task completed'),
            (e: unknown) => e,
          )
          expect(err).to.be.instanceOf(TaskFailure)
          expect((err as TaskFailure).message).to.include('the task failed')
          expect(errors).to.deep.equal([])
          // The provider was used where it could be (the fault is not a tracer that is never asked).
          if (fault !== 'getTracer' && fault !== 'startSpan') expect(made()).to.be.greaterThan(0)
          // A failed run's span whose recordException or setStatus throws is still ended.
          if (fault === 'recordException' || fault === 'setStatus') {
            const run = () =>
              exported.find(
                s => s.name === 'worq.run' && s.attributes['messaging.message.id'] === failed.id,
              )
            await until(() => run() !== undefined, 5_000, "the failed run's span")
            if (fault === 'recordException') expect(run()!.status.code).to.equal(2) // ERROR
          }
        } finally {
          await pool.stop()
          await broker.purge().catch(() => undefined)
          await broker.close()
        }
      })

    it('a context manager whose with() throws fails no run: the run goes on untraced', async () => {
      // A real SDK (its spans record, so worq makes the run's span active through with()).
      const provider = new BasicTracerProvider()
      let made = 0
      trace.setGlobalTracerProvider({
        getTracer(name, version) {
          const tracer = provider.getTracer(name, version)
          return {
            startSpan(n, options, ctx) {
              made++
              return tracer.startSpan(n, options, ctx)
            },
            startActiveSpan: tracer.startActiveSpan.bind(tracer) as Tracer['startActiveSpan'],
          }
        },
      })
      const manager = new AsyncLocalStorageContextManager().enable()
      manager.with = () => {
        throw new Error('the context manager failed')
      }
      context.setGlobalContextManager(manager)
      const broker = getBroker(url, uniqueQueue('traced'))
      broker.expose(function add(a: number, b: number) {
        return a + b
      })
      broker.expose(function boom(): never {
        throw new Error('the task failed')
      })
      const pool = new WorkerPool(broker, { concurrency: 2 })
      const errors: Error[] = []
      pool.on('pool:error', err => errors.push(err))
      try {
        await pool.start()
        const q = broker.queue()
        expect(await (await q.add(1, 2)).result(5_000)).to.equal(3)
        const failed = await task(q.boom, { attempts: 1 })()
        const err = await failed.result(5_000).then(
          () => expect.fail('the failing task completed'),
          (e: unknown) => e,
        )
        expect((err as TaskFailure).message).to.include('the task failed')
        expect(errors).to.deep.equal([])
        // The spans were made: with() was met with a span to make active.
        expect(made).to.be.greaterThan(0)
      } finally {
        await pool.stop()
        await broker.purge().catch(() => undefined)
        await broker.close()
      }
    })
  })
