/** What the wait- and run-time histograms of a broker's queue hold, read as Prometheus reads it. */
import type { Broker } from '../../lib/index.js'
import { prometheusMetrics } from '../../lib/metrics/index.js'
import { samples } from './promtool.js'

/** How many runs and waits the queue's histograms hold (the `_count` of each). */
export async function histogramCounts(broker: Broker) {
  const all = samples(await prometheusMetrics(broker))
  const count = (name: string) => all.find(x => x.name === name)?.value
  return {
    runs: count('worq_task_run_seconds_count'),
    waits: count('worq_task_wait_seconds_count'),
  }
}
