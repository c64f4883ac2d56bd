/**
 * Prometheus's own parser of the exposition format: `promtool check metrics` (Debian package
 * `prometheus`), which parses the text and lints it as Prometheus would scrape it.
 */
import { spawnSync } from 'node:child_process'

const INSTALL =
  'promtool was not found on PATH; the metrics tests check the Prometheus text with it: apt-get install prometheus'

/** Parses and lints `text`; returns what promtool said (empty when all is well), or throws. */
export function promtoolCheck(text: string): string {
  const r = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' })
  if (r.error && (r.error as NodeJS.ErrnoException).code === 'ENOENT') throw new Error(INSTALL)
  const said = `${r.stdout ?? ''}${r.stderr ?? ''}`.trim()
  if (r.status !== 0) throw new Error(`promtool check metrics failed (${r.status}): ${said}`)
  return said
}

/** The samples of an exposition text: name, labels and value per line. */
export function samples(
  text: string,
): Array<{ name: string; labels: Record<string, string>; value: number }> {
  const out: Array<{ name: string; labels: Record<string, string>; value: number }> = []
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line)
    if (!m) throw new Error(`not a sample line: ${line}`)
    const labels: Record<string, string> = {}
    for (const l of (m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!
    out.push({ name: m[1]!, labels, value: Number(m[3]) })
  }
  return out
}
