// Scale-out: K queues served by P worker processes, on one Redis and on a Redis Cluster of three
// masters, for P = 1, 2, 4: aggregate throughput (a producer process keeps calls in flight on every
// queue and reads every result) and the Redis CPU each task costs: the servers' process CPU from
// INFO cpu (command execution and network I/O), and from INFO commandstats the time spent in
// scripts and transactions and the commands executed, summed over every node, per task. bee-queue and BullMQ
// run the same load on the one Redis in the same run (neither runs on a cluster as configured here:
// bee-queue has no cluster support, BullMQ needs every queue under one hash-tagged prefix).
//
//   node bench/scale-out.js [tasks=20000] [queues=6] [processes=1,2,4] [libraries=worq,bee-queue,bullmq]
//
// Needs `npm run build` (worq from dist/) and `npm ci` in bench/ for the peers.
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { Cluster, Redis } from 'ioredis'
import { commandStats, serverCpuUs, startRedis } from './redis.js'
import { startCluster } from './cluster.js'

const [tasksArg = '20000', queuesArg = '6', procsArg = '1,2,4', libsArg = 'worq,bee-queue,bullmq'] =
  process.argv.slice(2)
const TASKS = Number(tasksArg)
const K = Number(queuesArg)
const PROCS = procsArg.split(',').map(Number)
const LIBS = libsArg.split(',')
/** Concurrency per queue in each worker process, and calls in flight per queue. */
const CONCURRENCY = 8
const WINDOW = Math.max(1, Math.ceil(48 / K))
const HERE = new URL('.', import.meta.url).pathname

function node(args) {
  const child = spawn(process.execPath, [`${HERE}scale-node.js`, ...args], {
    stdio: ['pipe', 'pipe', 'inherit'],
  })
  let out = ''
  child.stdout.on('data', d => (out += d))
  return { child, out: () => out }
}

async function lineOf(p, re) {
  while (!re.test(p.out())) await once(p.child.stdout, 'data')
}

/**
 * INFO of every node: µs in scripts and transactions (FCALL, EVALSHA, EVAL, EXEC: the commands
 * inside them are counted in them, and again under their own names, so only these are summed),
 * commands executed (inner ones included), and process CPU µs.
 */
async function serverCost(conns) {
  let usec = 0
  let calls = 0
  let cpu = 0
  for (const c of conns) {
    for (const [name, s] of commandStats(await c.info('commandstats'))) {
      calls += s.calls
      if (/^(fcall|fcall_ro|evalsha|eval|exec)$/.test(name)) usec += s.usec
    }
    cpu += serverCpuUs(await c.info('cpu'))
  }
  return { usec, calls, cpu }
}

async function run(target, library, procs) {
  const queues = QUEUES
  for (const c of target.conns) {
    await c.flushall()
    await c.config('RESETSTAT')
  }
  const workers = Array.from({ length: procs }, () =>
    node(['worker', library, target.url, queues.join(','), String(CONCURRENCY)]),
  )
  await Promise.all(workers.map(w => lineOf(w, /ready/)))
  const before = await serverCost(target.conns)
  const producer = node([
    procs === 0 ? 'both' : 'producer',
    library,
    target.url,
    queues.join(','),
    String(TASKS),
    String(WINDOW),
  ])
  const [code] = await once(producer.child, 'exit')
  if (code !== 0) throw new Error(`${library} producer exited ${code}`)
  const after = await serverCost(target.conns)
  const { ms } = JSON.parse(producer.out().trim().split('\n').at(-1))
  for (const w of workers) w.child.stdin.end()
  await Promise.all(workers.map(w => once(w.child, 'exit')))
  return {
    target: target.name,
    library,
    procs,
    tasksPerSecond: Math.round(TASKS / (ms / 1000)),
    scriptUsPerTask: +((after.usec - before.usec) / TASKS).toFixed(1),
    commandsPerTask: +((after.calls - before.calls) / TASKS).toFixed(2),
    serverCpuUsPerTask: +((after.cpu - before.cpu) / TASKS).toFixed(1),
  }
}

const single = await startRedis()
const cluster = await startCluster(3)
const clusterConns = cluster.ports.map(port => new Redis({ port, host: '127.0.0.1' }))
const targets = [
  { name: 'one Redis', url: single.url, conns: [new Redis(single.url)], peers: true },
  { name: 'cluster (3 masters)', url: cluster.url, conns: clusterConns, peers: false },
]
// K queues spread evenly over the masters: names so0, so1, … taken while their master has fewer
// than its share.
const probe = new Cluster(cluster.ports.slice(0, 1).map(port => ({ host: '127.0.0.1', port })))
const owners = await clusterConns[0].cluster('SLOTS')
const QUEUES = []
const perMaster = new Map()
for (let i = 0; QUEUES.length < K; i++) {
  const slot = await probe.cluster('KEYSLOT', `worq:{so${i}}:conf`)
  const port = owners.find(([a, b]) => a <= slot && slot <= b)[2][1]
  if ((perMaster.get(port) ?? 0) >= Math.ceil(K / cluster.ports.length)) continue
  perMaster.set(port, (perMaster.get(port) ?? 0) + 1)
  QUEUES.push(`so${i}`)
}
probe.disconnect()
console.error(`queues ${QUEUES.join(', ')}: ${[...perMaster.values()].join(' / ')} per master`)

const rows = []
try {
  for (const target of targets)
    for (const library of LIBS) {
      if (library !== 'worq' && !target.peers) continue
      // 0: producer and workers in one process, the layout every library runs in the same way
      // (bee-queue's separate producer process stopped receiving results here).
      for (const procs of library === 'worq' ? [0, ...PROCS] : [0]) {
        const row = await run(target, library, procs)
        console.error(JSON.stringify(row))
        rows.push(row)
      }
    }
} finally {
  for (const t of targets) for (const c of t.conns) c.disconnect()
  single.stop()
  cluster.stop()
}
console.log(
  `\n${TASKS} tasks over ${K} queues, ${CONCURRENCY} per queue per worker process, ${WINDOW} calls in flight per queue\n`,
)
console.log(
  '| target | library | worker processes (0: in the producer) | tasks/s | Redis CPU µs/task (INFO cpu) | in scripts and transactions µs/task (INFO commandstats) | commands/task |',
)
console.log('| --- | --- | ---: | ---: | ---: | ---: | ---: |')
for (const r of rows)
  console.log(
    `| ${r.target} | ${r.library} | ${r.procs} | ${r.tasksPerSecond} | ${r.serverCpuUsPerTask} | ${r.scriptUsPerTask} | ${r.commandsPerTask} |`,
  )
process.exit(0)
