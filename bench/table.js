// Medians, spreads and number formats shared by the Redis and Postgres tables of npm run bench.

export const median = xs => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2
}

export const fmt = (x, d = 0) =>
  x === undefined || Number.isNaN(x)
    ? '—'
    : x.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d })

/** The median of `field` over `runs` and its text: the median and, in parentheses, min–max. */
export function stat(runs, field, d) {
  const xs = runs.map(r => r[field]).filter(x => typeof x === 'number')
  if (!xs.length) return { m: NaN, text: '—' }
  const m = median(xs)
  const spread = xs.length > 1 ? ` (${fmt(Math.min(...xs), d)}–${fmt(Math.max(...xs), d)})` : ''
  return { m, text: `${fmt(m, d)}${spread}` }
}

/**
 * A table row: each library's cell, then worq's median over each peer's ('—' where either is
 * missing). `libs` names the columns of `stats`, worq first when it ran.
 */
export function tableRow(label, metric, stats, libs, peers) {
  const w = libs[0] === 'worq' ? stats[0].m : NaN
  const ratios = peers.map(p => {
    const m = stats[libs.indexOf(p)].m
    return Number.isFinite(w) && Number.isFinite(m) && m !== 0 ? `${(w / m).toFixed(2)}×` : '—'
  })
  return `| ${label} | ${metric} | ${stats.map(s => s.text).join(' | ')} | ${ratios.join(' | ')} |`
}
