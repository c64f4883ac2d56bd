/**
 * The dashboard page's files (dist/http/dashboard/), which the HTTP API serves at `/`: built by
 * `npm run build`, and here for the tests that fetch the page, so that `npm test` in a fresh clone
 * (no build yet) finds them. esbuild: well under a second.
 */
import { execFileSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))

/** Builds the dashboard page into dist/http/dashboard/ (scripts/build-dashboard.js). */
export function buildDashboardPage(): void {
  execFileSync(process.execPath, ['scripts/build-dashboard.js'], { cwd: ROOT })
}
