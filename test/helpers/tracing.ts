/**
 * The OpenTelemetry SDK as an application registers it, for the tracing tests: a tracer provider
 * whose spans go to an exporter, the W3C trace-context propagator, and an async-hooks context
 * manager. worq itself depends on `@opentelemetry/api` only.
 */
import { context, propagation, trace, type SpanContext } from '@opentelemetry/api'
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks'
import { W3CTraceContextPropagator } from '@opentelemetry/core'
import {
  BasicTracerProvider,
  SimpleSpanProcessor,
  type ReadableSpan,
  type SpanExporter,
} from '@opentelemetry/sdk-trace-base'

/** A finished span, as plain data. */
export interface SpanRecord {
  name: string
  kind: number
  traceId: string
  spanId: string
  parentSpanId?: string
  attributes: Record<string, unknown>
  status: { code: number; message?: string }
  events: string[]
  links: SpanContext[]
}

/** A span as plain data. */
export function record(s: ReadableSpan): SpanRecord {
  const r: SpanRecord = {
    name: s.name,
    kind: s.kind,
    traceId: s.spanContext().traceId,
    spanId: s.spanContext().spanId,
    attributes: { ...s.attributes },
    status: { ...s.status },
    events: s.events.map(e => e.name),
    links: s.links.map(l => l.context),
  }
  if (s.parentSpanContext) r.parentSpanId = s.parentSpanContext.spanId
  return r
}

/**
 * Registers the SDK globally; finished spans go to `exported`. `propagator: false` leaves the
 * global propagator unset (a setup that registers a tracer provider and a context manager only).
 */
export function registerTracing(
  exported: (span: SpanRecord) => void,
  { propagator = true } = {},
): () => Promise<void> {
  const exporter: SpanExporter = {
    export(spans, done) {
      for (const s of spans) exported(record(s))
      done({ code: 0 })
    },
    async shutdown() {},
  }
  const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] })
  trace.setGlobalTracerProvider(provider)
  if (propagator) propagation.setGlobalPropagator(new W3CTraceContextPropagator())
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable())
  return async () => {
    await provider.shutdown()
    trace.disable()
    propagation.disable()
    context.disable()
  }
}
