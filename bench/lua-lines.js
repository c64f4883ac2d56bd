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
// 100 calls are a warm-up and are not counted.
//
// Needs lua5.1 and lua-cjson (apt-get install lua5.1 lua-cjson).
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
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
const settings = process.env.WORQ_SETTINGS ? JSON.parse(process.env.WORQ_SETTINGS) : undefined
const WARM = 100
const LOG = 'lualines:log'

const { getBroker, task, TaskSpace, WorkerPool } = await import(dist)
const { functionLibrary } = await import(join(dirname(dist), 'backends/redis/lua-source.js'))
const { code } = functionLibrary()

// The recording copy: same library name and functions (worq finds it loaded and calls it). Each
// operation logs its name and arguments before it starts, and every redis.call / redis.pcall logs
// its command and reply (through the real redis.call, so the log itself is not logged). The
// operation's entry is written after begin() (which issues no command), once `cjson` is set.
function replace(text, from, to) {
  if (!text.includes(from)) throw new Error(`lua-lines: the library has changed: no ${from}`)
  return text.split(from).join(to)
}
let recording = replace(
  code,
  '    string, table, math, cjson, tonumber, unpack, ipairs, pairs, type, rcall = runtime_globals()\n',
  `    string, table, math, cjson, tonumber, unpack, ipairs, pairs, type, rcall = runtime_globals()
    local real = rcall
    rcall = function(...)
      local r = real(...)
      real('RPUSH', '${LOG}', cjson.encode({ 'C', { ... }, r }))
      return r
    end
`,
)
// redis.pcall is used as it is in a few places: routed through a field of a table the library
// already has (a new local would pass Lua's limit of 200 in the main function).
recording = replace(recording, 'redis.pcall(', 'SMALL.pcall(')
recording = replace(
  recording,
  "    for i = 0, 255 do SMALL[i] = string.format('%d', i) end\n",
  `    for i = 0, 255 do SMALL[i] = string.format('%d', i) end
    SMALL.pcall = function(...)
      local r = redis.pcall(...)
      redis.call('RPUSH', '${LOG}', cjson.encode({ 'P', { ... }, r }))
      return r
    end
`,
)
recording = recording.replace(
  /local function (op_\w+)\(_, args\)\nbegin\(args\)\n/g,
  (all, op) =>
    `local function ${op}(_, args)\nbegin(args)\nredis.call('RPUSH', '${LOG}', cjson.encode({ 'F', '${op}', args }))\n`,
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
const warmEntries = await admin.llen(LOG)
await calls(n)
await pool.stop({ timeout: 5000 })
const entries = await admin.lrange(LOG, 0, -1)
await broker.close()
if (producer !== broker) await producer.close()
admin.disconnect()

// The replay. Lines of the library keep their numbers (its first line, `#!lua name=…`, becomes a
// comment), so counts map back to the files.
const dir = mkdtempSync(join(tmpdir(), 'worq-lua-lines-'))
const lib = code.replace(/^#!lua[^\n]*/, '--')
writeFileSync(join(dir, 'library.lua'), lib)
writeFileSync(join(dir, 'log.json'), `[${entries.join(',')}]`)
writeFileSync(
  join(dir, 'replay.lua'),
  `
-- A global, as in Redis (the library reads it on its first call).
cjson = require('cjson')
local dir, warm = arg[1], tonumber(arg[2])
local f = assert(io.open(dir .. '/log.json')); local log = cjson.decode(f:read('*a')); f:close()
local at = 1
local function answer(kind, args)
  local e = log[at]
  if not e or e[1] ~= kind or string.upper(e[2][1]) ~= string.upper(args[1]) then
    error('lua-lines: replay diverged at entry ' .. at .. ': ' .. tostring(args[1]))
  end
  at = at + 1
  local r = e[3]
  if r == nil or r == cjson.null then return false end
  return r
end
local ops = {}
redis = {
  call = function(...) return answer('C', { ... }) end,
  pcall = function(...) return answer('P', { ... }) end,
  sha1hex = function(s) return string.format('%040x', #s) end,
  register_function = function(t) ops[t.function_name] = t.callback end,
  log = function() end,
}
local chunk = assert(loadfile(dir .. '/library.lua'))
chunk()
local byop = {}
for name, fn in pairs(ops) do byop[string.match(name, '^worq_%x+_(.+)$')] = fn end
-- steps[line] = VM instructions on that line; ccalls[line][name] = calls of C functions from it
local steps, ccalls, counting = {}, {}, false
local function hook(event)
  if not counting then return end
  if event == 'count' then
    local info = debug.getinfo(2, 'Sl')
    if info and string.find(info.source, 'library.lua', 1, true) then
      steps[info.currentline] = (steps[info.currentline] or 0) + 1
    end
  elseif event == 'call' then
    local callee = debug.getinfo(2, 'Sn')
    -- A C function, or this replay's stand-in for redis.call / redis.pcall.
    local stand_in = callee and callee.what == 'Lua' and string.find(callee.source, 'replay.lua', 1, true)
    if stand_in then callee.name = 'redis.call' end
    if callee and (callee.what == 'C' or stand_in) then
      local caller = debug.getinfo(3, 'Sl')
      if caller and string.find(caller.source, 'library.lua', 1, true) then
        local l = caller.currentline
        local t = ccalls[l] or {}
        ccalls[l] = t
        local k = callee.name or '?'
        t[k] = (t[k] or 0) + 1
      end
    end
  end
end
local opcount = {}
local i = 1
local calls = 0
while i <= #log do
  local e = log[i]
  if e[1] ~= 'F' then error('lua-lines: a command outside an operation at entry ' .. i) end
  at = i + 1
  local name = string.sub(e[2], 4)
  local fn = byop[name]
  counting = i > warm
  if counting then opcount[name] = (opcount[name] or 0) + 1 end
  debug.sethook(hook, 'c', 1)
  fn({ 'k' }, e[3])
  debug.sethook()
  i = at
end
local out = { steps = {}, ccalls = {}, ops = opcount }
for l, c in pairs(steps) do out.steps[tostring(l)] = c end
for l, t in pairs(ccalls) do out.ccalls[tostring(l)] = t end
print(cjson.encode(out))
`,
)
const printed = execFileSync('lua5.1', [join(dir, 'replay.lua'), dir, String(warmEntries)], {
  encoding: 'utf8',
  maxBuffer: 1 << 26,
})
rmSync(dir, { recursive: true, force: true })
const result = JSON.parse(printed)

// Which file each line of the library came from.
const lines = code.split('\n')
const scripts = join(dirname(dist), 'backends/redis/scripts')
const origin = new Array(lines.length + 1)
for (const file of execFileSync('ls', [scripts], { encoding: 'utf8' })
  .split('\n')
  .filter(Boolean)) {
  const text = readFileSync(join(scripts, file), 'utf8').replace(/\n$/, '')
  const start = code.indexOf(text)
  if (start < 0) continue
  const first = code.slice(0, start).split('\n').length
  const count = text.split('\n').length
  for (let k = 0; k < count; k++) origin[first + k] = `${file}:${k + 1}`
}

const perCall = x => (x / n).toFixed(1)
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
  `${n} calls (after ${WARM} of warm-up), batch ${batch}${process.env.PRODUCER === 'apart' ? ', producer apart' : ''}; operations run: ${Object.entries(
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
  console.log(
    `  ${perCall(c).padStart(8)} ${perCall(cc).padStart(6)}  ${(origin[l] ?? `library:${l}`).padEnd(18)} ${lines[l - 1].trim().slice(0, 90)}`,
  )
}
console.log(`\nredis.call by line (calls a call, line):`)
const byCommandLine = Object.entries(result.ccalls)
  .map(([l, t]) => [Number(l), t['redis.call'] ?? 0])
  .filter(([, c]) => c > 0)
  .sort((a, b) => b[1] - a[1])
  .slice(0, top)
for (const [l, c] of byCommandLine)
  console.log(
    `  ${perCall(c).padStart(6)}  ${(origin[l] ?? `library:${l}`).padEnd(18)} ${lines[l - 1].trim().slice(0, 90)}`,
  )
process.exit(0)
