// The machine's pace when a run starts and ends: two fixed workloads timed, so that a reader of
// docs/benchmarks.md can tell a run made in a slow spell of this shared machine from one made in a
// calm one (rates and Redis CPU per task move by a factor of two between spells; ratios less, but
// not nothing). Lower is faster. Each figure is the best of three tries.
//
// - Lua: a loop of 1 000 000 additions, then 100 000 strings made and stored in a small table, in
//   the private Redis (EVAL), the kind of work a library's scripts do; timed inside Redis (TIME),
//   so the round trip is left out. A first try, not counted, warms the script and the allocator.
// - Node: 20 000 JSON round trips of a small task-like object in this process.

const LUA = `
local t0 = redis.call('TIME')
local x, t = 0, {}
for i = 1, 1000000 do x = x + i end
for i = 1, 100000 do
  t[(i % 100) + 1] = 'id' .. i
  x = x + #t[(i % 100) + 1]
end
local t1 = redis.call('TIME')
return (t1[1] - t0[1]) * 1000000 + (t1[2] - t0[2])
`

function nodeLoop() {
  const task = { id: 'V1StGXR8_Z5jdHi6B-myT', name: 'math.add', args: [1, 2], attempts: 1 }
  const t0 = performance.now()
  let n = 0
  for (let i = 0; i < 20000; i++) n += JSON.parse(JSON.stringify({ ...task, i })).i
  if (n < 0) throw new Error('unreachable')
  return performance.now() - t0
}

/** The pace now: { luaMs, nodeMs } (best of three), with `admin` an ioredis client of the server. */
export async function machinePace(admin) {
  let luaMs = Infinity
  let nodeMs = Infinity
  await admin.eval(LUA, 0)
  nodeLoop()
  for (let i = 0; i < 3; i++) {
    luaMs = Math.min(luaMs, Number(await admin.eval(LUA, 0)) / 1000)
    nodeMs = Math.min(nodeMs, nodeLoop())
  }
  return { luaMs: Math.round(luaMs * 10) / 10, nodeMs: Math.round(nodeMs * 10) / 10 }
}

/** A pace as a table cell: "Lua 41.2 / Node 30.5 ms". */
export const paceText = p => (p ? `Lua ${p.luaMs} / Node ${p.nodeMs} ms` : '—')
