// The bench's own tools that need no peer library, run briefly against a private redis-server, so
// that a change to the library's internals cannot leave them broken unnoticed (.ci/run runs this).
// Each tool's figures are not checked here, only that it runs to its end and prints its table.
// node bench/smoke.js
import { execFileSync } from 'node:child_process'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { startRedis } from './redis.js'

const here = dirname(fileURLToPath(import.meta.url))
/** [tool, arguments, a line its output must have, environment] */
const TOOLS = [
  ['ops.js', ['1', '5'], /enqueue with handover \d+/],
  ['ops.js', ['50', '3'], /exchange finishing them \d+/],
  ['lua-cost.js', ['5'], /redis\.call TIME/],
  ['lone-replay.js', ['50'], /the same commands, straight-line +[\d.]+ µs/],
  ['lone-plain.js', ['50', '20'], /plain commands, 50 lone calls after 20: p50 [\d.]+ ms/],
  ['lua-lines.js', [join(here, '../dist/index.js'), '20', '5'], /Lua VM instructions a call: \d+/],
  [
    'lua-lines.js',
    [join(here, '../dist/index.js'), '60', '5'],
    /a drain; operations run: .*exchange/,
    { DRAIN: '1', BATCH: '10' },
  ],
]

const redis = await startRedis()
let failed = 0
try {
  for (const [tool, args, expected, env = {}] of TOOLS) {
    try {
      const out = execFileSync(process.execPath, [join(here, tool), ...args], {
        env: { ...process.env, ...env, REDIS_URL: redis.url },
        encoding: 'utf8',
        timeout: 120_000,
        stdio: ['ignore', 'pipe', 'pipe'],
      })
      if (!expected.test(out)) throw new Error(`no line matching ${expected} in:\n${out}`)
      console.log(`bench/${tool} ${args.join(' ')}: ok`)
    } catch (err) {
      failed++
      console.error(`bench/${tool} ${args.join(' ')}: ${err.stderr || err.message}`)
    }
  }
} finally {
  await redis.stop()
}
process.exit(failed === 0 ? 0 : 1)
