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

/**
 * Runs every scenario for every library, `reps` times, interleaved (a, b, c, a, b, c, …), and
 * prints each run as `<label>rep <rep> <scenario> n=<n> c=<c> <lib>: <what it measured>`.
 * Resolves to the runs by `key(scenario, n, c)`, then by library.
 */
export async function runInterleaved({ reps, scenarios, libs, runOnce, label = '', onRun }) {
  const results = new Map()
  for (let rep = 1; rep <= reps; rep++) {
    for (const [scenario, n, c] of scenarios) {
      for (const lib of libs) {
        const r = await runOnce(lib, scenario, n, c)
        const k = key(scenario, n, c)
        if (!results.has(k)) results.set(k, new Map())
        if (!results.get(k).has(lib)) results.get(k).set(lib, [])
        results.get(k).get(lib).push(r)
        onRun?.(lib, r)
        const shown = r.skipped
          ? `skipped: ${r.skipped}`
          : r.p50 !== undefined
            ? `p50 ${r.p50.toFixed(3)} ms p99 ${r.p99.toFixed(3)} ms`
            : `${Math.round(r.tasksPerSec)} tasks/s`
        console.log(`${label}rep ${rep} ${scenario} n=${n} c=${c} ${lib}: ${shown}`)
      }
    }
  }
  return results
}

/** The key of a scenario's runs. */
export const key = (s, n, c) => `${s}|${n}|${c}`
