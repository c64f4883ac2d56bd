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
import { backendIdentity } from '../backends/identity.js'
import { redactUrl } from '../redact-url.js'
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
 *
 * Each queue is rendered once: a broker given twice, or two brokers of the same queue name on
 * one backend, count as one. Backend URLs are compared by what they reach, not as written:
 * `redis://h` and `redis://H:6379/0` are one backend (the host's case, default ports and
 * databases, credentials and connection options do not count; a `memory://` URL counts as
 * written, as each spelling is a store of its own). Host names are not resolved: `localhost` and
 * `127.0.0.1` are two backends (`localhost` may reach `::1`, another server's address). One queue name on two backends would print
 * clashing series (a scrape with duplicate series is rejected whole), so it is a `TypeError`
 * naming both URLs: render each backend's queues in a text of its own (docs/metrics.md).
 *
 * @throws TypeError when `brokers` is not a Broker or an array of Brokers, or names one queue on
 * two backends.
 */
export async function prometheusMetrics(brokers: Broker | readonly Broker[]): Promise<string> {
  const samples: QueueSample[] = await Promise.all(
    distinctQueues(brokers).map(async b => {
      const [{ totals }, info] = await Promise.all([b.metricsData(1), b.inspect()])
      return { queue: b.name, info, totals }
    }),
  )
  return exposition(samples)
}

/** A Broker as far as this module uses it (a check that also holds across copies of worq). */
function isBroker(b: unknown): b is Broker {
  const o = b as Partial<Broker> | null
  return (
    typeof o === 'object' &&
    o !== null &&
    typeof o.name === 'string' &&
    typeof o.url === 'string' &&
    typeof o.metricsData === 'function' &&
    typeof o.inspect === 'function'
  )
}

/**
 * `brokers` checked, one per queue: the first broker of each queue name, in the order given. The
 * same name on another backend (lib/backends/identity.ts) is a TypeError, as its series would
 * clash.
 */
function distinctQueues(brokers: unknown): Broker[] {
  const list: unknown[] = Array.isArray(brokers) ? brokers : [brokers]
  const byName = new Map<string, { broker: Broker; backend: string }>()
  for (const b of list) {
    if (!isBroker(b))
      throw new TypeError(
        `Expected \`brokers\` to be a Broker or an array of Brokers (from getBroker()), got ${describe(b)}`,
      )
    const seen = byName.get(b.name)
    // The same broker again, or the same URL as written, needs no parsing.
    if (seen !== undefined && (seen.broker === b || seen.broker.url === b.url)) continue
    const backend = backendIdentity(b.url)
    if (seen === undefined) byName.set(b.name, { broker: b, backend })
    else if (seen.backend !== backend)
      throw new TypeError(
        `Expected \`brokers\` to have each queue name on one backend, but queue ` +
          `${JSON.stringify(b.name)} is on ${redactUrl(seen.broker.url)} and on ` +
          `${redactUrl(b.url)}: their series would clash; render each backend in a text of its own`,
      )
  }
  return [...byName.values()].map(e => e.broker)
}

function describe(v: unknown): string {
  if (v === null || typeof v !== 'object')
    return typeof v === 'string' ? JSON.stringify(v) : String(v)
  return Array.isArray(v) ? 'an array' : 'an object that is not a Broker'
}
