// Where the Lua of worq's function library spends its steps, line by line: a worq build makes `n`
// calls (enqueue, run, result) against a private redis-server whose copy of the library records
// every call it receives and every reply each of its `redis.call`s gets; then a standalone Lua 5.1
// (the language version Redis embeds) runs the same library on those arguments, each command
// answered with the reply it got in Redis, so it takes the very same paths, and a debug hook counts
// the virtual machine's instructions on each line and the C functions each line calls (string.*,
// table.*, cjson, and redis.call). Neither the work inside those functions nor Redis's own time for
// the commands is counted here (bench/instructions.js counts all of that, by C function).
//
//   node bench/lua-lines.js <index.js of a worq build> [n=300] [top=40]
//
// BATCH=25 makes the calls in rounds of 25 (a pool of concurrency 25); PRODUCER=apart makes them
// from a second broker; WORQ_SETTINGS='{"events":false}' configures the queue first. The first
// 100 calls are a warm-up and are not counted. DRAIN=1 counts a drain: the `n` calls are enqueued
// while no worker runs (not counted), then a pool of concurrency BATCH runs them all.
//
// Needs lua5.1 and lua-cjson (apt-get install lua5.1 lua-cjson).
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Redis } from 'ioredis'
import { startRedis } from './redis.js'

const [, , dist, nArg = '300', topArg = '40'] = process.argv
if (!dist) {
  console.error('usage: node bench/lua-lines.js <index.js of a worq build> [n] [top]')
  process.exit(2)
}
const n = Number(nArg)
const top = Number(topArg)
const batch = Number(process.env.BATCH ?? 1)
const drain = process.env.DRAIN === '1'
const settings = process.env.WORQ_SETTINGS ? JSON.parse(process.env.WORQ_SETTINGS) : undefined
const WARM = 100
const here = dirname(fileURLToPath(import.meta.url))
const LOG = 'lualines:log'

const { getBroker, task, TaskSpace, WorkerPool } = await import(dist)
const { functionLibrary } = await import(join(dirname(dist), 'backends/redis/lua-source.js'))
const { code } = functionLibrary()

// The recording copy: same library name and functions (worq finds it loaded and calls it). Each
// operation logs its name and arguments once begin() has set `cjson` (begin() issues no command),
// and every redis.call / redis.pcall (`rcall`, `rpcall`) logs its command and reply (through the
// real redis.call, so the log itself is not logged).
function replace(text, from, to) {
  if (!text.includes(from)) throw new Error(`lua-lines: the library has changed: no ${from}`)
  return text.split(from).join(to)
}
let recording = replace(
  code,
  '    string, table, math, cjson, tonumber, unpack, ipairs, pairs, type, rcall, rpcall =\n      runtime_globals()\n',
  `    string, table, math, cjson, tonumber, unpack, ipairs, pairs, type, rcall, rpcall =
      runtime_globals()
    local real, realp = rcall, rpcall
    rcall = function(...)
      local r = real(...)
      real('RPUSH', '${LOG}', cjson.encode({ 'C', { ... }, r }))
      return r
    end
    rpcall = function(...)
      local r = realp(...)
      real('RPUSH', '${LOG}', cjson.encode({ 'P', { ... }, r }))
      return r
    end
`,
)
recording = recording.replace(
  /callback = function\(_, args\) -- ([\w-]+)\nbegin\(args\)\n/g,
  (whole, name) =>
    `${whole}redis.call('RPUSH', '${LOG}', cjson.encode({ 'F', 'op_${name.replace('-', '_')}', args }))\n`,
)

const server = await startRedis()
process.on('exit', () => server.stop())
const admin = new Redis(server.url)
await admin.function('LOAD', recording)

const long = 600_000
const broker = getBroker(server.url, 'll', { watchdog: { pingMs: long, blockMs: long } })
broker.expose(new TaskSpace('', { add: (a, b) => a + b }))
if (settings) await broker.configure(settings)
const pool = new WorkerPool(broker, { concurrency: batch, sweepInterval: long })
await pool.start()
const producer = process.env.PRODUCER === 'apart' ? getBroker(server.url, 'll') : broker
const add = task(producer.queue().add, { heartrate: long })
async function calls(count) {
  for (let i = 0; i < count; i += batch) {
    const round = []
    for (let j = i; j < Math.min(i + batch, count); j++) round.push(add(j, 1))
    const handles = await Promise.all(round)
    await Promise.all(handles.map(d => d.result(60_000)))
  }
}
await calls(WARM)
let warmEntries = await admin.llen(LOG)
if (drain) {
  // DRAIN=1: the n calls are enqueued while no worker runs (not counted), then a pool of
  // concurrency BATCH starts and runs them all (counted).
  await pool.stop({ timeout: 5000 })
  const handles = []
  for (let i = 0; i < n; i += 1000)
    handles.push(
      ...(await Promise.all(
        Array.from({ length: Math.min(1000, n - i) }, (_, j) => add(i + j, 1)),
      )),
    )
  warmEntries = await admin.llen(LOG)
  const drainer = new WorkerPool(broker, { concurrency: batch, sweepInterval: long })
  await drainer.start()
  await Promise.all(handles.map(d => d.result(60_000)))
  await drainer.stop({ timeout: 5000 })
} else {
  await calls(n)
  await pool.stop({ timeout: 5000 })
}
const entries = await admin.lrange(LOG, 0, -1)
await broker.close()
if (producer !== broker) await producer.close()
admin.disconnect()

// The replay (bench/lua-lines.lua). Lines of the library keep their numbers (its first line,
// `#!lua name=…`, becomes a comment), so counts map back to the files.
const dir = mkdtempSync(join(tmpdir(), 'worq-lua-lines-'))
const lib = code.replace(/^#!lua[^\n]*/, '--')
writeFileSync(join(dir, 'library.lua'), lib)
writeFileSync(join(dir, 'log.json'), `[${entries.join(',')}]`)
const printed = execFileSync('lua5.1', [join(here, 'lua-lines.lua'), dir, String(warmEntries)], {
  encoding: 'utf8',
  maxBuffer: 1 << 26,
})
rmSync(dir, { recursive: true, force: true })
const result = JSON.parse(printed)

// Which file each line of the library came from.
const lines = code.split('\n')
const scripts = join(dirname(dist), 'backends/redis/scripts')
const origin = new Array(lines.length + 1)
for (const file of readdirSync(scripts)) {
  const text = readFileSync(join(scripts, file), 'utf8').replace(/\n$/, '')
  const start = code.indexOf(text)
  if (start < 0) continue
  const first = code.slice(0, start).split('\n').length
  const count = text.split('\n').length
  for (let k = 0; k < count; k++) origin[first + k] = `${file}:${k + 1}`
}

const perCall = x => (x / n).toFixed(1)
/** A line of the library: its file and line there, and its text. */
const where = l => `${(origin[l] ?? `library:${l}`).padEnd(18)} ${lines[l - 1].trim().slice(0, 90)}`
const stepsOf = Object.entries(result.steps).map(([l, c]) => [Number(l), c])
const total = stepsOf.reduce((a, [, c]) => a + c, 0)
const byFile = new Map()
for (const [l, c] of stepsOf) {
  const file = (origin[l] ?? 'library').split(':')[0]
  byFile.set(file, (byFile.get(file) ?? 0) + c)
}
const cTotal = {}
for (const t of Object.values(result.ccalls))
  for (const [k, c] of Object.entries(t)) cTotal[k] = (cTotal[k] ?? 0) + c
console.log(
  `${n} calls (after ${WARM} of warm-up), batch ${batch}${process.env.PRODUCER === 'apart' ? ', producer apart' : ''}${drain ? ', a drain' : ''}; operations run: ${Object.entries(
    result.ops,
  )
    .map(([k, v]) => `${k} ${v}`)
    .join(', ')}`,
)
console.log(`Lua VM instructions a call: ${perCall(total)}`)
console.log('\nby file (VM instructions a call):')
for (const [file, c] of [...byFile].sort((a, b) => b[1] - a[1]))
  console.log(`  ${perCall(c).padStart(9)}  ${file}`)
console.log('\nC functions called a call:')
for (const [k, c] of Object.entries(cTotal)
  .sort((a, b) => b[1] - a[1])
  .slice(0, 20))
  console.log(`  ${perCall(c).padStart(9)}  ${k}`)
console.log(`\ntop ${top} lines (VM instructions a call, C calls a call, line):`)
for (const [l, c] of stepsOf.sort((a, b) => b[1] - a[1]).slice(0, top)) {
  const cc = Object.values(result.ccalls[String(l)] ?? {}).reduce((a, b) => a + b, 0)
  console.log(`  ${perCall(c).padStart(8)} ${perCall(cc).padStart(6)}  ${where(l)}`)
}
console.log(`\nredis.call by line (calls a call, line):`)
const byCommandLine = Object.entries(result.ccalls)
  .map(([l, t]) => [Number(l), t['redis.call'] ?? 0])
  .filter(([, c]) => c > 0)
  .sort((a, b) => b[1] - a[1])
  .slice(0, top)
for (const [l, c] of byCommandLine) console.log(`  ${perCall(c).padStart(6)}  ${where(l)}`)
process.exit(0)
