/**
 * Queue metrics as `broker.metrics()` reports them (docs/metrics.md): per-minute counts, the tasks
 * in each state now, and wait-time and run-time percentiles from the backend's histograms.
 */
import { TIME_BUCKETS_MS, type MinuteCounts, type QueueInfo } from '../backends/backend.js'

/** Counts of one minute. */
export interface MinuteMetrics {
  /** The minute's start. */
  time: Date
  /** Tasks that completed. */
  completed: number
  /** Tasks that failed for good. */
  failed: number
  /** Runs that failed (or lost their lease) and were put back for another attempt. */
  retried: number
  /** Tasks whose worker stopped renewing the lease, with no attempt left. */
  expired: number
  /** Tasks cancelled. */
  cancelled: number
}

/** Percentiles of a duration, ms. */
export interface Percentiles {
  /** The median. */
  p50: number
  /** 95 % took no longer. */
  p95: number
  /** 99 % took no longer. */
  p99: number
}

/** What `broker.metrics()` reports. */
export interface QueueMetrics {
  /** The queue. */
  queue: string
  /** Each minute of the window that saw anything, oldest first. */
  minutes: MinuteMetrics[]
  /** Tasks in each state now. */
  counts: {
    /** Ready, or waiting for a slot of a concurrency limit. */
    waiting: number
    /** Held back until a due time. */
    delayed: number
    /** Waiting for Deferred arguments. */
    pending: number
    /** Taken by a worker. */
    processing: number
  }
  /** Time from ready to started, over the window; undefined when nothing started. */
  waitTime: Percentiles | undefined
  /** Time a run took, over the window; undefined when nothing ran. */
  runTime: Percentiles | undefined
  /** Counts since the queue's metrics began (what Prometheus counters show). */
  totals: Omit<MinuteMetrics, 'time'>
}

/**
 * The duration at quantile `q` of a histogram of TIME_BUCKETS_MS buckets (bucket i counts
 * durations in (2^(i−1), 2^i] ms, bucket 0 those up to 1 ms, the last those over 2^20 ms),
 * interpolated within its bucket. Undefined for an empty histogram.
 *
 * The counts are whole numbers and `q` a decimal of at most six places, so the interpolation is
 * done on integers and divided once: a p95 of three runs under 1 ms reads 0.95, not the
 * 0.9499999999999998 of `0.95 * 3 / 3`.
 */
export function quantile(buckets: readonly number[], q: number): number | undefined {
  const total = buckets.reduce((s, n) => s + n, 0)
  if (total === 0) return undefined
  // rank = q × total, scaled by SCALE so that it is an integer.
  const qs = Math.round(q * SCALE)
  const rank = qs * total
  let seen = 0
  for (let i = 0; i < buckets.length; i++) {
    const n = buckets[i]!
    if (n > 0 && (seen + n) * SCALE >= rank) {
      const low = i === 0 ? 0 : TIME_BUCKETS_MS[i - 1]!
      const high = TIME_BUCKETS_MS[i] ?? 2 * TIME_BUCKETS_MS[TIME_BUCKETS_MS.length - 1]!
      // low + (high − low) × (rank − seen) / n, over one denominator.
      const num = low * n * SCALE + (high - low) * (rank - seen * SCALE)
      const den = n * SCALE
      // Past 2^53 the integers are no longer exact: then as floats, as near as they allow.
      return Number.isSafeInteger(num) && Number.isSafeInteger(den)
        ? num / den
        : low + ((high - low) * (rank / SCALE - seen)) / n
    }
    seen += n
  }
  return TIME_BUCKETS_MS[TIME_BUCKETS_MS.length - 1]!
}

/** `quantile` reads `q` to six decimal places. */
const SCALE = 1_000_000

function percentiles(buckets: readonly number[]): Percentiles | undefined {
  const p50 = quantile(buckets, 0.5)
  if (p50 === undefined) return undefined
  return { p50, p95: quantile(buckets, 0.95)!, p99: quantile(buckets, 0.99)! }
}

function sum(a: number[], b: readonly number[]): number[] {
  return a.map((x, i) => x + (b[i] ?? 0))
}

/** What `broker.metrics()` reports, from the backend's counts. */
export function summarize(
  queue: string,
  data: { minutes: MinuteCounts[]; totals: MinuteCounts },
  info: QueueInfo,
): QueueMetrics {
  const empty = new Array<number>(TIME_BUCKETS_MS.length + 1).fill(0)
  let wait = empty
  let run = empty
  for (const m of data.minutes) {
    wait = sum(wait, m.wait)
    run = sum(run, m.run)
  }
  const { completed, failed, retried, expired, cancelled } = data.totals
  return {
    queue,
    minutes: data.minutes.map(m => ({
      time: new Date(m.minute),
      completed: m.completed,
      failed: m.failed,
      retried: m.retried,
      expired: m.expired,
      cancelled: m.cancelled,
    })),
    counts: {
      waiting: info.waiting,
      delayed: info.delayed,
      pending: info.pending,
      processing: info.processing,
    },
    waitTime: percentiles(wait),
    runTime: percentiles(run),
    totals: { completed, failed, retried, expired, cancelled },
  }
}
