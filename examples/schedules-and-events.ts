/**
 * Seeing and shaping a queue on memory://: the event stream (docs/events.md), a periodic task
 * (docs/schedules.md), pause and resume (docs/settings.md), and metrics with their Prometheus text
 * (docs/metrics.md). CI runs it; it ends by itself in a couple of seconds. Swap the URL for
 * redis://127.0.0.1:6379/0 to run it on Redis, where any other process could read the same events.
 */
import { getBroker, TaskSpace, WorkerPool, type QueueEvent } from '../lib/index.js'
import { prometheusMetrics } from '../lib/metrics/index.js'

export const reports = new TaskSpace('reports', {
  build: (kind: string) => ({ kind, rows: 42 }),
  fail: () => {
    throw new Error('the source is down')
  },
})

const broker = getBroker('memory://', 'reports').expose(reports)
const q = broker.queue<typeof reports>()
const pool = new WorkerPool(broker, { concurrency: 4, sweepInterval: 200 })
pool.on('pool:paused', e => console.log(`pool: queue ${e.queue} paused`))
pool.on('pool:resumed', e => console.log(`pool: queue ${e.queue} resumed`))
await pool.start()

// --- the event stream: every task of the queue, from any process; listeners are typed ---
const events = broker.events() // from now on; broker.events({ since: eventId }) resumes
const seen: QueueEvent[] = []
events.on('*', e => seen.push(e))
events.on('failed', e => console.log(`event: ${e.name} failed: ${e.error.message}`))
await events.ready // everything from here on is in the stream

// Resolves when `n` runs of the schedule have completed (waiting on events, not on a clock).
function completedRuns(n: number): Promise<void> {
  return new Promise(resolve => {
    let count = 0
    events.on('completed', e => {
      if (e.id.startsWith('tick@') && ++count === n) resolve()
    })
  })
}

// --- a periodic task: fired by the queue's pools, one task per due time ---
const threeRuns = completedRuns(3)
await broker.schedule('tick', { every: 200, limit: 3 }, q.reports.build, 'tick')
// A cron schedule with a time zone: listed with its next due time, fired at 03:00 Berlin time.
await broker.schedule(
  'nightly',
  { cron: '0 3 * * *', tz: 'Europe/Berlin' },
  q.reports.build,
  'nightly',
)
await threeRuns
for (const s of await broker.schedules())
  console.log(`schedule ${s.id}: runs ${s.runs}, next ${s.next?.toISOString() ?? '(ended)'}`)
await broker.unschedule('nightly')

// --- pause and resume: enqueues are taken, nothing new starts until the resume ---
await broker.pause()
const held = await q.reports.build('while paused')
console.log('paused:', await broker.isPaused(), 'the call is', await held.status()) // enqueued
await broker.resume()
console.log('after the resume:', await held.result(5_000))

const failed = await q.reports.fail()
await failed.wait(5_000)

// --- metrics: per-minute counts, the states now, percentiles; and Prometheus text ---
const m = await broker.metrics({ minutes: 5 })
console.log('totals:', JSON.stringify(m.totals), 'run p95 ms:', m.runTime?.p95)
const text = await prometheusMetrics(broker)
console.log(
  text
    .split('\n')
    .filter(l => l.startsWith('worq_tasks_total'))
    .join('\n'),
)

await events.close()
const kinds = new Map<string, number>()
for (const e of seen) kinds.set(e.type, (kinds.get(e.type) ?? 0) + 1)
console.log('events seen:', [...kinds].map(([t, n]) => `${t} ${n}`).join(', '))

await pool.stop({ timeout: 5_000 })
await broker.close()
