// One benchmark run in a fresh process: `node runner.js <library> <scenario> <n> <concurrency>`.
// Prints one JSON line: elapsed ms, Node CPU µs, peak RSS, socket writes to the server (Redis or
// PostgreSQL), and latencies. The server is BENCH_URL (a postgres:// URL for the Postgres rows), or
// REDIS_URL.
// `node runner.js <library> worker 0 <concurrency>` is one worker process of the 'deploy' scenario:
// it prints "ready" once its workers run, and on its stdin's end stops and prints its CPU time.
// The worker processes get this process's Node flags: `node --cpu-prof runner.js worq deploy …`
// writes a profile of each of the three processes.
// `node runner.js <library> setup 0 <concurrency>` starts the library and its worker and stops them
// (on Postgres: creates the library's schema before the measured run, out of its statistics).
// An adapter whose `create` resolves to `{ skipped: reason }` makes every run print that reason.
// `e2e-window-steady`, `e2e-open-steady` and `deploy-steady` run their row's loop twice and measure
// the second (after warm-up); on Redis they report the server's CPU of that part (`redisCpuUs`).
import { spawn } from 'node:child_process'
import net from 'node:net'
import { createInterface } from 'node:readline'
import { serverCpuUs } from './redis.js'

const [, , library, scenario, nArg, concurrencyArg] = process.argv
const n = Number(nArg)
const concurrency = Number(concurrencyArg)
const url = process.env.BENCH_URL ?? process.env.REDIS_URL
const serverPort = Number(new URL(url).port || (url.startsWith('postgres') ? 5432 : 6379))

// Client round trips, approximated as writes to the server's sockets (a pipeline flush is one write).
let writes = 0
const write = net.Socket.prototype.write
net.Socket.prototype.write = function (...args) {
  if (this.remotePort === serverPort) writes++
  return write.apply(this, args)
}

// On Postgres, client round trips counted exactly: every query a node-postgres client sends (each
// waits for its reply). Both the bench's pg (the peers') and the library's own, if it has one.
let queries = 0
if (/^postgres(ql)?:/.test(url)) {
  const { createRequire } = await import('node:module')
  const seen = new Set()
  for (const from of [import.meta.url, new URL('../package.json', import.meta.url).href]) {
    let path
    try {
      path = createRequire(from).resolve('pg')
    } catch {
      continue
    }
    if (seen.has(path)) continue
    seen.add(path)
    const { default: pg } = await import(path)
    const query = pg.Client.prototype.query
    pg.Client.prototype.query = function (...args) {
      queries++
      return query.apply(this, args)
    }
  }
}

const adapter = await import(`./adapters/${library}.js`)
const needsWorker = !['enqueue-single', 'enqueue-bulk', 'deploy', 'deploy-steady'].includes(
  scenario,
)
const lib = await adapter.create(url, { concurrency, worker: needsWorker, scenario })
if (lib.skipped) {
  if (scenario === 'worker') process.stdout.write('ready\n')
  process.stdout.write(
    JSON.stringify({ library, scenario, n, concurrency, skipped: lib.skipped }) + '\n',
  )
  process.exit(0)
}

if (scenario === 'setup') {
  if (concurrency > 0) await lib.startWorker()
  await lib.close()
  process.stdout.write(JSON.stringify({ library, scenario, setup: true }) + '\n')
  process.exit(0)
}

if (scenario === 'worker') {
  const cpu0 = process.cpuUsage()
  await lib.startWorker()
  process.stdout.write('ready\n')
  process.stdin.resume()
  await new Promise(resolve => process.stdin.on('end', resolve))
  const cpu = process.cpuUsage(cpu0)
  await lib.close()
  process.stdout.write(JSON.stringify({ cpuUs: cpu.user + cpu.system }) + '\n')
  process.exit(0)
}

/** The deploy scenario's worker processes: resolves once all of them run their workers. */
async function startWorkerProcesses(count) {
  const children = []
  for (let i = 0; i < count; i++) {
    const child = spawn(
      process.execPath,
      [...process.execArgv, process.argv[1], library, 'worker', '0', String(concurrency)],
      { env: process.env, stdio: ['pipe', 'pipe', 'inherit'] },
    )
    const lines = createInterface({ input: child.stdout })
    const next = () => new Promise(resolve => lines.once('line', resolve))
    if ((await next()) !== 'ready') throw new Error(`${library} worker process did not start`)
    children.push({ child, next })
  }
  return {
    /** Stops the workers; resolves to their CPU time in µs. */
    async stop() {
      let cpuUs = 0
      for (const { child, next } of children) {
        const last = next()
        child.stdin.end()
        cpuUs += JSON.parse(await last).cpuUs
      }
      return cpuUs
    },
  }
}
const pairs = Array.from({ length: n }, (_, i) => [i, 1])

/** Three priority levels in turn, 1 first (both worq and BullMQ run lower numbers first). */
const levels = [3, 1, 2]

/**
 * Keeps `window` calls in flight: enqueue, then read the result, `n` times; `prioritized` gives
 * each call one of three priorities in turn.
 */
async function windowed(window, withResult, prioritized = false) {
  let next = 0
  async function lane() {
    while (next < n) {
      const i = next++
      const [a, b] = pairs[i]
      const h = prioritized ? await lib.addPriority(a, b, levels[i % 3]) : await lib.add(a, b)
      if (withResult) {
        const v = await lib.result(h)
        if (v !== a + b) throw new Error(`wrong result ${v} for ${a} + ${b}`)
      }
    }
  }
  await Promise.all(Array.from({ length: window }, lane))
}

/** Open loop: `window` enqueues in flight, results read as they come, not waited on per lane. */
async function openLoop(window) {
  let next = 0
  const results = []
  async function lane() {
    while (next < n) {
      const [a, b] = pairs[next++]
      const h = await lib.add(a, b)
      results.push(
        lib.result(h).then(v => {
          if (v !== a + b) throw new Error(`wrong result ${v} for ${a} + ${b}`)
        }),
      )
    }
  }
  await Promise.all(Array.from({ length: window }, lane))
  await Promise.all(results)
}

async function bulk(withResult) {
  const handles = []
  for (let i = 0; i < n; i += 1000) handles.push(...(await lib.addBulk(pairs.slice(i, i + 1000))))
  if (withResult) await Promise.all(handles.map(h => lib.result(h)))
}

const out = { library, scenario, n, concurrency }
let cpu0 = process.cpuUsage()
let t0 = performance.now()
let writes0 = writes
let queries0 = queries

// '<row>-steady': the row's loop run twice, the first time as warm-up (after it, the process's
// code is optimised, as in a long-running service), the second measured. The
// server's CPU is read here around the measured part (Redis `INFO cpu`), where bench/run.js reads
// it around the whole process.
const steady = /^(e2e-window|e2e-open|deploy)-steady$/.test(scenario)
let redisCpu = null
if (steady && !/^postgres(ql)?:/.test(url)) {
  const { default: Redis } = await import('../node_modules/ioredis/built/index.js')
  const admin = new Redis(url)
  redisCpu = { admin, cpuUs: async () => serverCpuUs(await admin.info('cpu')), at: 0 }
}

/**
 * Runs a row's `loop` measured: a '-steady' row runs it once first as warm-up, then starts the
 * measurement (Node CPU and the server's CPU too); the others measure from the loop's start.
 */
async function measured(loop) {
  if (steady) {
    await loop()
    if (redisCpu) redisCpu.at = await redisCpu.cpuUs()
    cpu0 = process.cpuUsage()
  }
  t0 = performance.now()
  writes0 = writes
  queries0 = queries
  await loop()
}

switch (scenario) {
  case 'e2e-window':
  case 'e2e-window-steady':
    await lib.startWorker()
    await measured(() => windowed(50, true))
    break
  case 'e2e-priority':
    if (!lib.addPriority) {
      out.skipped = 'no priorities'
      break
    }
    await lib.startWorker()
    t0 = performance.now()
    writes0 = writes
    await windowed(50, true, true)
    break
  case 'e2e-open':
  case 'e2e-open-steady':
    await lib.startWorker()
    await measured(() => openLoop(50))
    break
  case 'deploy':
  case 'deploy-steady': {
    // A producer process and two worker processes at `concurrency` each; the producer keeps
    // 2 × concurrency calls in flight and reads every result back. (After warm-up, the workers'
    // CPU is left out: they report theirs for the whole run.)
    const workers = await startWorkerProcesses(2)
    await measured(() => windowed(2 * concurrency, true))
    out.ms = performance.now() - t0
    const workerCpuUs = await workers.stop()
    if (!steady) out.workerCpuUs = workerCpuUs
    break
  }
  case 'e2e-bulk':
    await lib.startWorker()
    t0 = performance.now()
    writes0 = writes
    queries0 = queries
    await bulk(true)
    break
  case 'enqueue-single':
    await windowed(50, false)
    break
  case 'enqueue-bulk':
    await bulk(false)
    break
  case 'drain': {
    const handles = []
    for (let i = 0; i < n; i += 1000) handles.push(...(await lib.addBulk(pairs.slice(i, i + 1000))))
    t0 = performance.now()
    writes0 = writes
    queries0 = queries
    await lib.startWorker()
    await Promise.all(handles.map(h => lib.result(h)))
    break
  }
  case 'latency':
  case 'latency-steady': {
    await lib.startWorker()
    const lat = []
    // Warm-up calls, not measured. 'latency' measures a process just started (its code still being
    // compiled); 'latency-steady' one that has made 2 000 calls, as a long-running service has.
    const warmup = scenario === 'latency' ? 50 : 2000
    for (let i = 0; i < warmup; i++) await lib.result(await lib.add(i, 1))
    t0 = performance.now()
    writes0 = writes
    queries0 = queries
    for (let i = 0; i < n; i++) {
      const s = performance.now()
      await lib.result(await lib.add(i, 1))
      lat.push(performance.now() - s)
    }
    lat.sort((a, b) => a - b)
    out.p50 = lat[Math.floor(n * 0.5)]
    out.p99 = lat[Math.floor(n * 0.99)]
    break
  }
  case 'graph': {
    if (!lib.graph) {
      out.skipped = 'no dependency graphs'
      break
    }
    await lib.startWorker()
    t0 = performance.now()
    writes0 = writes
    queries0 = queries
    const trees = n / 10
    const roots = []
    for (let t = 0; t < trees; t++)
      roots.push(lib.graph(Array.from({ length: 10 }, (_, i) => [t, i])))
    const values = await Promise.all((await Promise.all(roots)).map(h => lib.result(h)))
    values.forEach((v, t) => {
      if (v !== 10 * t + 45) throw new Error(`wrong tree sum ${v}`)
    })
    break
  }
  default:
    throw new Error(`unknown scenario ${scenario}`)
}
out.ms ??= performance.now() - t0
if (redisCpu) {
  out.redisCpuUs = (await redisCpu.cpuUs()) - redisCpu.at
  redisCpu.admin.disconnect()
}
const cpu = process.cpuUsage(cpu0)
out.cpuUsPerTask = (cpu.user + cpu.system + (out.workerCpuUs ?? 0)) / n
out.writesPerTask = (writes - writes0) / n
if (/^postgres(ql)?:/.test(url)) out.queriesPerTask = (queries - queries0) / n
if (adapter.readsBack === false) out.readsBack = false
out.peakRssMb = process.resourceUsage().maxRSS / 1024
await lib.close()
process.stdout.write(JSON.stringify(out) + '\n')
process.exit(0)
