/**
 * The library's records as the API's JSON (lib/http/types.ts): dates as ISO strings, task values
 * through `toWire` (plain JSON as is, else tagged).
 */
import type {
  QueueEvent,
  QueueInfo,
  QueueMetrics,
  ScheduleInfo,
  TaskInfo,
  WorkerInfo,
} from '../index.js'
import type {
  EventJson,
  JsonValue,
  MetricsJson,
  QueueJson,
  ScheduleJson,
  TaskJson,
  WorkerJson,
} from './types.js'
import { toWire } from './values.js'

/** A TaskInfo as JSON. */
export function taskJson(t: TaskInfo): TaskJson {
  const out: TaskJson = {
    id: t.id,
    name: t.name,
    queue: t.queue,
    status: t.status,
    priority: t.priority,
    metadata: t.metadata as Record<string, JsonValue>,
    attempt: t.attempt,
    attempts: t.attempts,
    createdAt: t.createdAt.toISOString(),
    cached: t.cached,
  }
  if (t.progress !== undefined) out.progress = toWire(t.progress)
  if (t.runAt) out.runAt = t.runAt.toISOString()
  if (t.startedAt) out.startedAt = t.startedAt.toISOString()
  if (t.finishedAt) out.finishedAt = t.finishedAt.toISOString()
  if (t.workerId !== undefined) out.workerId = t.workerId
  if (t.value !== undefined) out.value = toWire(t.value)
  if (t.error) out.error = { ...t.error }
  if (t.args) out.args = t.args.map(toWire)
  return out
}

/** A queue's counts as JSON. */
export function queueJson(name: string, i: QueueInfo): QueueJson {
  return {
    name,
    waiting: i.waiting,
    delayed: i.delayed,
    pending: i.pending,
    processing: i.processing,
    paused: i.paused,
    workers: i.workers.length,
    oldestWaitingMs: i.oldestWaitingMs,
  }
}

/** A live worker as JSON. */
export function workerJson(queue: string, w: WorkerInfo): WorkerJson {
  return {
    queue,
    id: w.id,
    hostname: w.hostname,
    pid: w.pid,
    concurrency: w.concurrency,
    running: w.running,
    startedAt: new Date(w.startedAt).toISOString(),
    seenAt: new Date(w.seenAt).toISOString(),
    names: [...w.names],
    tasks: [...w.tasks],
  }
}

/** A schedule as JSON. */
export function scheduleJson(s: ScheduleInfo): ScheduleJson {
  const out: ScheduleJson = { id: s.id, name: s.name, runs: s.runs }
  if (s.cron !== undefined) out.cron = s.cron
  if (s.tz !== undefined) out.tz = s.tz
  if (s.every !== undefined) out.every = s.every
  if (s.next) out.next = s.next.toISOString()
  if (s.last) out.last = s.last.toISOString()
  return out
}

/** A queue event as JSON. */
export function eventJson(e: QueueEvent): EventJson {
  const { time, ...rest } = e as QueueEvent & { progress?: unknown }
  const out: EventJson = {
    ...(rest as Omit<EventJson, 'time' | 'progress'>),
    time: time.toISOString(),
  }
  if ('progress' in e) {
    if (e.progress === undefined) delete out.progress
    else out.progress = toWire(e.progress)
  }
  return out
}

/** `broker.metrics()` as JSON. */
export function metricsJson(m: QueueMetrics): MetricsJson {
  return {
    queue: m.queue,
    minutes: m.minutes.map(x => ({ ...x, time: x.time.toISOString() })),
    totals: { ...m.totals },
  }
}
