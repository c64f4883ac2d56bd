/**
 * Prometheus exposition text of one or more queues (docs/metrics.md): counters of ended and
 * retried tasks, gauges of the tasks in each state, live workers and whether the queue is paused,
 * and histograms of wait and run time, all with a `queue` label. Counters and histograms are the
 * backend's totals, which only grow, so they read as counters from any process.
 */
import { TIME_BUCKETS_MS, type MinuteCounts, type QueueInfo } from '../backends/backend.js'

/** What the text is made of, per queue. */
export interface QueueSample {
  queue: string
  info: QueueInfo
  totals: MinuteCounts
}

/** A label value, escaped as the text format asks (backslash, double quote, newline). */
function label(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')
}

function histogram(
  lines: string[],
  name: string,
  help: string,
  samples: readonly QueueSample[],
  pick: (t: MinuteCounts) => { buckets: number[]; sum: number },
): void {
  lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} histogram`)
  for (const s of samples) {
    const q = label(s.queue)
    const { buckets, sum } = pick(s.totals)
    let cumulative = 0
    TIME_BUCKETS_MS.forEach((bound, i) => {
      cumulative += buckets[i] ?? 0
      lines.push(`${name}_bucket{queue="${q}",le="${bound / 1000}"} ${cumulative}`)
    })
    cumulative += buckets[TIME_BUCKETS_MS.length] ?? 0
    lines.push(`${name}_bucket{queue="${q}",le="+Inf"} ${cumulative}`)
    lines.push(`${name}_sum{queue="${q}"} ${sum / 1000}`)
    lines.push(`${name}_count{queue="${q}"} ${cumulative}`)
  }
}

/** The exposition text of `samples`. */
export function exposition(samples: readonly QueueSample[]): string {
  const lines: string[] = []
  lines.push(
    '# HELP worq_tasks_total Tasks of the queue that ended, by status, and runs retried (status="retried").',
    '# TYPE worq_tasks_total counter',
  )
  for (const s of samples) {
    const q = label(s.queue)
    for (const status of ['completed', 'failed', 'expired', 'cancelled', 'retried'] as const)
      lines.push(`worq_tasks_total{queue="${q}",status="${status}"} ${s.totals[status]}`)
  }
  lines.push('# HELP worq_tasks Tasks of the queue now, by state.', '# TYPE worq_tasks gauge')
  for (const s of samples) {
    const q = label(s.queue)
    for (const state of ['waiting', 'delayed', 'pending', 'processing'] as const)
      lines.push(`worq_tasks{queue="${q}",state="${state}"} ${s.info[state]}`)
  }
  lines.push('# HELP worq_workers Live workers of the queue.', '# TYPE worq_workers gauge')
  for (const s of samples)
    lines.push(`worq_workers{queue="${label(s.queue)}"} ${s.info.workers.length}`)
  lines.push('# HELP worq_paused 1 while the queue is paused.', '# TYPE worq_paused gauge')
  for (const s of samples)
    lines.push(`worq_paused{queue="${label(s.queue)}"} ${s.info.paused ? 1 : 0}`)
  lines.push(
    '# HELP worq_oldest_waiting_seconds Age of the oldest task waiting to run (0 when none).',
    '# TYPE worq_oldest_waiting_seconds gauge',
  )
  for (const s of samples)
    lines.push(
      `worq_oldest_waiting_seconds{queue="${label(s.queue)}"} ${(s.info.oldestWaitingMs ?? 0) / 1000}`,
    )
  histogram(lines, 'worq_task_wait_seconds', 'Time from ready to started.', samples, t => ({
    buckets: t.wait,
    sum: t.waitSum,
  }))
  histogram(lines, 'worq_task_run_seconds', 'Time a run took.', samples, t => ({
    buckets: t.run,
    sum: t.runSum,
  }))
  return lines.join('\n') + '\n'
}
