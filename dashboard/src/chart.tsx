/**
 * Completed and failed tasks per minute over the last hour, as SVG bars (a hand-written chart:
 * two series of 60 bars need no chart library). The numbers are also in its accessible name.
 */
import type { MetricsJson } from '../../lib/http/types.js'

const W = 600
const H = 120
const SLOTS = 60

export function MinuteChart({ metrics }: { metrics: MetricsJson }) {
  const now = Math.floor(Date.now() / 60_000)
  const slots = Array.from({ length: SLOTS }, () => ({ completed: 0, failed: 0 }))
  for (const m of metrics.minutes) {
    const i = SLOTS - 1 - (now - Math.floor(new Date(m.time).getTime() / 60_000))
    if (i >= 0 && i < SLOTS) slots[i] = { completed: m.completed, failed: m.failed }
  }
  const max = Math.max(1, ...slots.map(s => s.completed + s.failed))
  const bar = W / SLOTS
  const completed = slots.reduce((s, x) => s + x.completed, 0)
  const failed = slots.reduce((s, x) => s + x.failed, 0)
  return (
    <figure class="chart">
      <svg
        viewBox={`0 0 ${W} ${H}`}
        role="img"
        aria-label={`Queue ${metrics.queue}, last hour: ${completed} completed, ${failed} failed`}
        preserveAspectRatio="none"
      >
        {slots.map((s, i) => {
          const hc = (s.completed / max) * (H - 4)
          const hf = (s.failed / max) * (H - 4)
          return (
            <g key={i}>
              {hc > 0 && <rect class="ok" x={i * bar + 1} y={H - hc} width={bar - 2} height={hc} />}
              {hf > 0 && (
                <rect class="bad" x={i * bar + 1} y={H - hc - hf} width={bar - 2} height={hf} />
              )}
            </g>
          )
        })}
      </svg>
      <figcaption>
        Per minute, last hour (max {max}/min): <span class="key ok">completed {completed}</span>{' '}
        <span class="key bad">failed {failed}</span>
      </figcaption>
    </figure>
  )
}
