// One benchmark run in a fresh process: `node runner.js <library> <scenario> <n> <concurrency>`.
// Prints one JSON line: elapsed ms, Node CPU µs, peak RSS, socket writes to Redis, and latencies.
import net from 'node:net'

const [, , library, scenario, nArg, concurrencyArg] = process.argv
const n = Number(nArg)
const concurrency = Number(concurrencyArg)
const url = process.env.REDIS_URL
const redisPort = Number(new URL(url).port)

// Client round trips, approximated as writes to Redis sockets (a pipeline flush is one write).
let writes = 0
const write = net.Socket.prototype.write
net.Socket.prototype.write = function (...args) {
  if (this.remotePort === redisPort) writes++
  return write.apply(this, args)
}

const adapter = await import(`./adapters/${library}.js`)
const needsWorker = scenario !== 'enqueue-single' && scenario !== 'enqueue-bulk'
const lib = await adapter.create(url, { concurrency, worker: needsWorker })
const pairs = Array.from({ length: n }, (_, i) => [i, 1])

/** Keeps `window` calls in flight: enqueue, then read the result, `n` times. */
async function windowed(window, withResult) {
  let next = 0
  async function lane() {
    while (next < n) {
      const [a, b] = pairs[next++]
      const h = await lib.add(a, b)
      if (withResult) {
        const v = await lib.result(h)
        if (v !== a + b) throw new Error(`wrong result ${v} for ${a} + ${b}`)
      }
    }
  }
  await Promise.all(Array.from({ length: window }, lane))
}

async function bulk(withResult) {
  const handles = []
  for (let i = 0; i < n; i += 1000) handles.push(...(await lib.addBulk(pairs.slice(i, i + 1000))))
  if (withResult) await Promise.all(handles.map(h => lib.result(h)))
}

const out = { library, scenario, n, concurrency }
const cpu0 = process.cpuUsage()
let t0 = performance.now()
let writes0 = writes
switch (scenario) {
  case 'e2e-window':
    await lib.startWorker()
    t0 = performance.now()
    writes0 = writes
    await windowed(50, true)
    break
  case 'e2e-bulk':
    await lib.startWorker()
    t0 = performance.now()
    writes0 = writes
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
out.ms = performance.now() - t0
const cpu = process.cpuUsage(cpu0)
out.cpuUsPerTask = (cpu.user + cpu.system) / n
out.writesPerTask = (writes - writes0) / n
out.peakRssMb = process.resourceUsage().maxRSS / 1024
await lib.close()
process.stdout.write(JSON.stringify(out) + '\n')
process.exit(0)
