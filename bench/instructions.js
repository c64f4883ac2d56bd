// Redis instructions per task, counted by valgrind's callgrind (the count repeats whatever else the
// machine is doing, unlike time): redis-server runs under callgrind, a worq build makes `n` calls
// one at a time (enqueue, run, result) with one pool, and the server's instruction count for n1
// calls is taken from that for n2 calls: (Ir(n2) - Ir(n1)) / (n2 - n1). Only command execution is
// counted (callgrind collects inside processCommand: a script with the commands it calls; not the
// event loop, socket reads and writes, or the server's cron).
//
//   node bench/instructions.js <index.js of a worq build> [n1=300] [n2=1300]
//   node bench/instructions.js bee-queue|bullmq [n1] [n2]   (a peer, through its bench adapter)
//
// BATCH=25 makes the calls in rounds of 25 at once (a pool of concurrency 25), as a busy queue
// does; PRODUCER=apart makes them from a second broker, as a producer process does; WORQ_SETTINGS='{"events":false}' configures the queue's settings first (docs/settings.md).
//
// ONLY=enqueue makes the calls and no worker runs them: the count is an enqueue's (in rounds of
// BATCH, as a producer's wave of calls goes).
//
// KEEP_MS=1000 keeps outcomes a second (resultTimeout): the listing's clean-up then runs during the
// count.
//
// REDIS_ARGS='--zset-max-listpack-entries 0' starts the server with those arguments too.
//
// IR_KEEP=/tmp/ir keeps each count's callgrind file as /tmp/ir.<n> (callgrind_annotate reads it).
//
// Needs valgrind (apt-get install valgrind).
import { execFileSync, spawn } from 'node:child_process'
import { once } from 'node:events'
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { freePort, serverArgs } from './redis.js'

const [, , dist, n1Arg = '300', n2Arg = '1300'] = process.argv
const peer = ['bee-queue', 'bullmq'].includes(dist) ? await import(`./adapters/${dist}.js`) : null
const { getBroker, task, TaskSpace, WorkerPool } = peer ? {} : await import(dist)
const batch = Number(process.env.BATCH ?? 1)
const enqueueOnly = process.env.ONLY === 'enqueue'
const settings = process.env.WORQ_SETTINGS ? JSON.parse(process.env.WORQ_SETTINGS) : undefined

async function count(n) {
  const dir = mkdtempSync(join(tmpdir(), 'worq-ir-'))
  const port = await freePort()
  const out = join(dir, 'callgrind.out')
  const server = spawn(
    'valgrind',
    [
      '--tool=callgrind',
      '--collect-atstart=no',
      '--toggle-collect=processCommand',
      `--callgrind-out-file=${out}`,
      'redis-server',
      ...serverArgs(port, dir, ...(process.env.REDIS_ARGS?.split(' ').filter(Boolean) ?? [])),
    ],
    { stdio: ['ignore', 'pipe', 'ignore'] },
  )
  let log = ''
  server.stdout.on('data', d => (log += d))
  while (!log.includes('Ready to accept connections')) await once(server.stdout, 'data')
  const url = `redis://127.0.0.1:${port}/0`
  if (peer) {
    // A peer as the bench runs it (results read back as its adapter reads them); what it runs by
    // the clock (stall checks) counts too, so its figure is, if anything, a little high.
    const lib = await peer.create(url, { concurrency: batch, worker: !enqueueOnly })
    if (!enqueueOnly) await lib.startWorker()
    for (let i = 0; i < n; i += batch) {
      const calls = []
      for (let j = i; j < Math.min(i + batch, n); j++) calls.push(lib.add(j, 1))
      const handles = await Promise.all(calls)
      if (!enqueueOnly) await Promise.all(handles.map(h => lib.result(h)))
    }
    await lib.close()
    return stop()
  }
  // Nothing that runs by the clock (sweeps, renewals, PINGs, re-armed waits) within the run, so
  // that the count depends on the calls alone.
  const long = 600_000
  const broker = getBroker(url, 'ir', { watchdog: { pingMs: long, blockMs: long } })
  broker.expose(new TaskSpace('', { add: (a, b) => a + b }))
  if (settings) await broker.configure(settings)
  const pool = new WorkerPool(broker, { concurrency: batch, sweepInterval: long })
  if (!enqueueOnly) await pool.start()
  // PRODUCER=apart: the calls come from a broker of their own (another client id), as a producer
  // process makes them: outcomes go back by PUBLISH instead of in the exchange's reply.
  const producer = process.env.PRODUCER === 'apart' ? getBroker(url, 'ir') : broker
  const keep = process.env.KEEP_MS ? { resultTimeout: Number(process.env.KEEP_MS) } : {}
  const add = task(producer.queue().add, { heartrate: long, ...keep })
  for (let i = 0; i < n; i += batch) {
    const calls = []
    for (let j = i; j < Math.min(i + batch, n); j++) calls.push(add(j, 1))
    const handles = await Promise.all(calls)
    if (!enqueueOnly) await Promise.all(handles.map(d => d.result(60_000)))
  }
  if (!enqueueOnly) await pool.stop({ timeout: 5000 })
  await broker.close()
  if (producer !== broker) await producer.close()
  return stop()

  async function stop() {
    execFileSync('redis-cli', ['-p', String(port), 'shutdown', 'nosave'])
    await once(server, 'exit')
    const ir = Number(/^(?:summary|totals): (\d+)/m.exec(readFileSync(out, 'utf8'))[1])
    if (process.env.IR_KEEP) copyFileSync(out, `${process.env.IR_KEEP}.${n}`)
    rmSync(dir, { recursive: true, force: true })
    return ir
  }
}

const [n1, n2] = [Number(n1Arg), Number(n2Arg)]
const a = await count(n1)
const b = await count(n2)
console.log(
  JSON.stringify({
    dist,
    batch,
    settings,
    producer: process.env.PRODUCER,
    only: process.env.ONLY,
    keepMs: process.env.KEEP_MS,
    perTask: Math.round((b - a) / (n2 - n1)),
  }),
)
process.exit(0)
