/**
 * `worq/metrics`: queue metrics for monitoring systems. `prometheusMetrics(brokers)` renders
 * Prometheus exposition text (serve it on `/metrics`); docs/metrics.md lists every series and
 * Grafana-ready queries.
 *
 * @packageDocumentation
 */
// The declarations name Node's types: @types/node, a dependency, is loaded with them (lib/ambient.ts).
/// <reference types="node" preserve="true" />
import type { Broker } from '../broker.js'
import { exposition, type QueueSample } from './prometheus.js'

export type { QueueMetrics, MinuteMetrics, Percentiles } from './summary.js'

/** Prometheus's content type for the text this renders. */
export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8'

/**
 * The Prometheus exposition text of one broker's queue or several (one `queue` label each):
 * `worq_tasks_total` (counter, by status), `worq_tasks` (gauge, by state), `worq_workers`,
 * `worq_paused`, `worq_oldest_waiting_seconds`, and the histograms `worq_task_wait_seconds` and
 * `worq_task_run_seconds`. Counters come from the backend's totals, so every process renders the
 * same numbers.
 */
export async function prometheusMetrics(brokers: Broker | readonly Broker[]): Promise<string> {
  const list = Array.isArray(brokers) ? brokers : [brokers as Broker]
  const samples: QueueSample[] = await Promise.all(
    list.map(async b => {
      const [{ totals }, info] = await Promise.all([b.metricsData(1), b.inspect()])
      return { queue: b.name, info, totals }
    }),
  )
  return exposition(samples)
}
