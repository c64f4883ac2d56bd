/**
 * OpenTelemetry tracing through `@opentelemetry/api` alone (docs/tracing.md): a `worq.enqueue`
 * span of kind PRODUCER around each call, its W3C trace context carried in the task's record, and
 * a `worq.run` span of kind CONSUMER around each run, parented to the producer's context in
 * whatever process runs it; a dependent's run links to the producers of its Deferred arguments.
 * Attributes follow the OpenTelemetry messaging conventions. Without an SDK registered every span
 * is a no-op that records nothing, and nothing is carried.
 *
 * The carried text is `<traceparent>\n<tracestate>` and then one `<traceparent>` line per link.
 */
import {
  ProxyTracerProvider,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  context,
  createTraceState,
  isSpanContextValid,
  propagation,
  trace,
  type Context,
  type Link,
  type Span,
  type SpanContext,
} from '@opentelemetry/api'
import { createRequire } from 'node:module'
import { Deferred } from './deferred.js'

const { version } = createRequire(import.meta.url)('../package.json') as { version: string }
/**
 * worq's tracer from the provider registered now (asked for at each span: a tracer obtained once
 * would keep the first provider registered, even after the application replaced it).
 */
const tracer = () => trace.getTracer('worq', version)

const kProducer = Symbol('worq.producer')

/** What the API's global provider delegates to while no SDK is registered. */
const NO_SDK = new ProxyTracerProvider().getDelegate()

/**
 * False while no SDK is registered: every span would be a no-op, so a call or a run skips making
 * one (its attributes, the active context's look-up: about 1.5 µs a call on the enqueue path).
 * Asked on each call, so an SDK registered later is seen at once. A global provider this copy of
 * the API cannot look into counts as registered.
 */
function sdkRegistered(): boolean {
  const provider = trace.getTracerProvider()
  return !(provider instanceof ProxyTracerProvider) || provider.getDelegate() !== NO_SDK
}

type Traced = Deferred<unknown> & { [kProducer]?: SpanContext }

/** The span contexts of the producers of the Deferreds among `args` (arrays, plain objects). */
function producers(v: unknown, out: SpanContext[], depth = 0): SpanContext[] {
  if (v instanceof Deferred) {
    const sc = (v as Traced)[kProducer]
    if (sc) out.push(sc)
  } else if (v !== null && typeof v === 'object' && depth < 32) {
    const proto = Object.getPrototypeOf(v)
    if (Array.isArray(v)) for (const x of v) producers(x, out, depth + 1)
    else if (proto === Object.prototype || proto === null)
      for (const x of Object.values(v)) producers(x, out, depth + 1)
  }
  return out
}

function traceparent(sc: SpanContext): string {
  return `00-${sc.traceId}-${sc.spanId}-${(sc.traceFlags & 1).toString(16).padStart(2, '0')}`
}

/**
 * The `traceparent` and `tracestate` the global propagator writes for `ctx`: none when it throws
 * (the application's propagator is broken: telemetry must not fail the call), and only single-line
 * strings (a line break would break the carried text apart).
 */
function injected(ctx: Context): { traceparent?: string; tracestate?: string } {
  const carrier: Record<string, unknown> = {}
  try {
    propagation.inject(ctx, carrier)
  } catch {
    return {}
  }
  const line = (v: unknown) => (typeof v === 'string' && !/[\r\n]/.test(v) ? v : undefined)
  const traceparent = line(carrier.traceparent)
  const tracestate = line(carrier.tracestate)
  return {
    ...(traceparent !== undefined && { traceparent }),
    ...(tracestate !== undefined && { tracestate }),
  }
}

/**
 * The context a carried `traceparent` (and `tracestate`) gives: the global propagator's reading,
 * or, where it reads nothing (none registered, or not a W3C one) or throws, the W3C form read
 * here, as startEnqueue writes it itself when the propagator writes nothing.
 */
function extracted(tp: string, state = ''): Context {
  const carrier: Record<string, string> = { traceparent: tp }
  if (state) carrier.tracestate = state
  let ctx = ROOT_CONTEXT
  try {
    ctx = propagation.extract(ROOT_CONTEXT, carrier)
  } catch {
    // A broken propagator: the run is still traced, from the W3C form read below.
  }
  if (trace.getSpanContext(ctx)) return ctx
  const m = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/.exec(tp)
  if (!m) return ctx
  const sc: SpanContext = {
    traceId: m[1]!,
    spanId: m[2]!,
    traceFlags: parseInt(m[3]!, 16) & 1,
    isRemote: true,
    ...(state && { traceState: createTraceState(state) }),
  }
  return isSpanContextValid(sc) ? trace.setSpanContext(ctx, sc) : ctx
}

/** A producer span in flight: the text to carry, and how to end it. */
export interface EnqueueSpan {
  /** What the task record carries ('' when nothing records). */
  carried: string
  /** Ends the span (with the error when the enqueue failed); remembers it on the Deferred. */
  end(deferred: Deferred<unknown> | undefined, err?: unknown): void
}

const NOTHING: EnqueueSpan = { carried: '', end: () => undefined }

/**
 * Starts the `worq.enqueue` span of a call (a no-op without an SDK). A tracer that throws, from
 * `getTracer`, `startSpan` or any method of its span, is treated as no SDK: telemetry never fails
 * the call it observes.
 */
export function startEnqueue(
  queue: string,
  name: string,
  id: string,
  args: readonly unknown[],
): EnqueueSpan {
  if (!sdkRegistered()) return NOTHING
  let span: Span | undefined
  try {
    span = tracer().startSpan(`worq.enqueue`, {
      kind: SpanKind.PRODUCER,
      attributes: {
        'messaging.system': 'worq',
        'messaging.destination.name': queue,
        'messaging.message.id': id,
        'messaging.operation.type': 'send',
        'messaging.operation.name': 'enqueue',
        'worq.task.name': name,
        // The run this call asks for is the task's first attempt (a retry's run has its own).
        'worq.task.attempt': 1,
      },
    })
    // Nothing records (no SDK): nothing more to do on the call's path.
    if (!span.isRecording()) return NOTHING
    const links: Link[] = producers(args, []).map(sc => ({ context: sc }))
    if (links.length > 0) span.addLinks(links)
    const own = span.spanContext()
    const carrier = injected(trace.setSpan(context.active(), span))
    const carried = [
      carrier.traceparent ?? traceparent(own),
      carrier.tracestate ?? '',
      ...links.map(l => traceparent(l.context)),
    ].join('\n')
    return { carried, end: ender(span, own) }
  } catch {
    // A broken tracer: the call goes on untraced (and the span, if one was made, is let go).
    if (span) quietly(span, s => s.end())
    return NOTHING
  }
}

/** How an enqueue span ends: never throwing, and the producer is remembered on the Deferred. */
function ender(span: Span, own: SpanContext): EnqueueSpan['end'] {
  return (deferred, err) => {
    if (deferred) (deferred as Traced)[kProducer] = own
    if (err !== undefined) quietly(span, s => fail(s, err))
    // Apart: a span whose recordException or setStatus throws is still ended (and exported).
    quietly(span, s => s.end())
  }
}

/**
 * Calls `use(span)`, and drops what it throws: a span method that throws (a broken SDK) must not
 * fail the call or the run it observes, nor, thrown from a run's continuation, crash the process.
 */
function quietly(span: Span, use: (span: Span) => void): void {
  try {
    use(span)
  } catch {
    // The application's tracer is broken; the work goes on as without tracing.
  }
}

/** Marks `span` failed with `err` (the status first: a recordException that throws keeps it). */
function fail(span: Span, err: unknown): void {
  span.setStatus({
    code: SpanStatusCode.ERROR,
    message: err instanceof Error ? err.message : String(err),
  })
  span.recordException(err instanceof Error ? err : String(err))
}

/** A consumer span in flight. */
export interface RunSpan {
  /** False when nothing records (no SDK). */
  readonly recording: boolean
  /**
   * Runs `fn` with the span as the active one (so spans the task makes nest under it); one that
   * does not record calls `fn` as is.
   */
  within<T>(fn: () => T): T
  /** Ends the span: `error` is the run's failure, if it failed. */
  end(error?: { name: string; message: string; stack?: string }): void
}

const NO_RUN: RunSpan = { recording: false, within: fn => fn(), end: () => undefined }

/**
 * Starts the `worq.run` span of a task's run (a no-op without an SDK, or with nothing carried). A
 * tracer that throws, from `getTracer`, `startSpan` or any method of its span, is treated as no
 * SDK: the task runs and ends as it would untraced.
 */
export function startRun(
  queue: string,
  name: string,
  id: string,
  attempt: number,
  carried: string,
): RunSpan {
  if (!sdkRegistered()) return NO_RUN
  let span: Span | undefined
  try {
    const [parent = '', state = '', ...linked] = carried ? carried.split('\n') : []
    const parentContext = parent ? extracted(parent, state) : context.active()
    const links: Link[] = []
    for (const tp of linked) {
      const sc = trace.getSpanContext(extracted(tp))
      if (sc) links.push({ context: sc })
    }
    span = tracer().startSpan(
      'worq.run',
      {
        kind: SpanKind.CONSUMER,
        attributes: {
          'messaging.system': 'worq',
          'messaging.destination.name': queue,
          'messaging.message.id': id,
          'messaging.operation.type': 'process',
          'messaging.operation.name': 'run',
          'worq.task.name': name,
          'worq.task.attempt': attempt,
        },
        links,
      },
      parentContext,
    )
    if (!span.isRecording()) return NO_RUN
    return running(span, trace.setSpan(parentContext, span))
  } catch {
    if (span) quietly(span, s => s.end())
    return NO_RUN
  }
}

/**
 * Calls `fn` with `active` as the active context. A context manager that throws (a broken SDK)
 * before it calls `fn` makes the run go on untraced, and one that throws after `fn` returned
 * leaves its value: telemetry never fails the run it observes. What `fn` throws is the run's own.
 */
function withinSpan<T>(active: Context, fn: () => T): T {
  let state: 'before' | 'running' | 'returned' = 'before'
  let value: T | undefined
  try {
    return context.with(active, () => {
      state = 'running'
      value = fn()
      state = 'returned'
      return value
    })
  } catch (err) {
    if (state === 'before') return fn()
    if (state === 'returned') return value as T
    throw err
  }
}

/** A recording run span, active as `active`; its end never throws. */
function running(span: Span, active: Context): RunSpan {
  return {
    recording: true,
    within: fn => withinSpan(active, fn),
    end(error) {
      if (error)
        quietly(span, s => {
          const e = new Error(error.message)
          e.name = error.name
          if (error.stack) e.stack = error.stack
          fail(s, e)
        })
      // Apart: a span whose recordException or setStatus throws is still ended (and exported).
      quietly(span, s => s.end())
    },
  }
}
