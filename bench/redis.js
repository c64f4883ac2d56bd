// A private redis-server for the benchmark: free loopback port, temporary directory, no persistence.
import { execFileSync, spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import net from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

/** What the installed redis-server prints of its version (read once). */
let versionText
function serverVersion() {
  versionText ??= execFileSync('redis-server', ['--version'], { encoding: 'utf8' }).trim()
  return versionText
}

/** The installed redis-server's major version (latency tracking exists from 7 on). */
const majorVersion = () => Number(/v=(\d+)/.exec(serverVersion())?.[1] ?? 0)

/**
 * Each command's calls and µs in an `INFO commandstats` text, by its name there (`fcall`,
 * `config|resetstat`, …).
 */
export function commandStats(info) {
  const stats = new Map()
  for (const line of info.split('\n')) {
    const m = /^cmdstat_([^:]+):calls=(\d+),usec=(\d+)/.exec(line)
    if (m) stats.set(m[1], { calls: Number(m[2]), usec: Number(m[3]) })
  }
  return stats
}

/** The commands the benchmark's own bookkeeping runs: left out of a run's totals. */
const OWN_COMMANDS = new Set(['info', 'config|resetstat', 'flushall', 'config'])

/** Calls and µs of every command and function in an `INFO commandstats` text, but the bench's own. */
export function commandTotals(info) {
  let calls = 0
  let usec = 0
  for (const [name, s] of commandStats(info)) {
    if (OWN_COMMANDS.has(name)) continue
    calls += s.calls
    usec += s.usec
  }
  return { calls, usec }
}

/** The server's CPU time in µs, user and system of every thread, in an `INFO cpu` text. */
export function serverCpuUs(info) {
  const f = k => Number(new RegExp(`^${k}:([\\d.]+)`, 'm').exec(info)[1])
  return 1e6 * (f('used_cpu_user') + f('used_cpu_sys'))
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = srv.address()
      srv.close(() => resolve(port))
    })
    srv.on('error', reject)
  })
}

/** Whether `port` on loopback can be listened on now. */
export function isFree(port) {
  return new Promise(resolve => {
    const srv = net.createServer()
    srv.once('error', () => resolve(false))
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)))
  })
}

/**
 * Where the benchmark's private servers run: in a session of their own, as a Redis service does.
 * A child in the benchmark's own session shares one scheduling group with the processes measured
 * (Linux's autogroup puts each session in one group; this machine has it on:
 * /proc/sys/kernel/sched_autogroup_enabled), so when they keep both cores busy the server gets a
 * share of that group's time instead of a group's: the deployment row (a producer and two worker
 * processes) then ran worq at a median 1.33× bee-queue's throughput against 1.48× with the server
 * in its own session (19 interleaved rounds; docs/benchmarks.md, "The private server's session").
 * A server in its own session is not stopped with the benchmark by the terminal, so every one
 * started here is stopped when this process exits or is interrupted.
 */
/** Where the private servers run, as result files record it (bench/run.js). */
export const SERVER_SESSION = 'own'
const servers = new Set()
function stopServers() {
  for (const child of servers) child.kill('SIGTERM')
  servers.clear()
}
let stopsWired = false

/** Starts redis-server with `args` in a session of its own (above), its stdout piped. */
export function spawnServer(args) {
  if (!stopsWired) {
    stopsWired = true
    process.on('exit', stopServers)
    for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'])
      process.once(signal, () => {
        stopServers()
        // A handler of the caller's (the Postgres rows' clean-up) ends the process itself;
        // otherwise the signal is raised again, now with its default action.
        if (process.listenerCount(signal) === 0) process.kill(process.pid, signal)
      })
  }
  const child = spawn('redis-server', args, {
    stdio: ['ignore', 'pipe', 'inherit'],
    detached: true,
  })
  servers.add(child)
  child.once('exit', () => servers.delete(child))
  return child
}

/** redis-server's arguments for a private server: loopback, no persistence, then `extra`. */
export function serverArgs(port, dir, ...extra) {
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no']
  return [...args, '--dir', dir, ...extra]
}

export async function startRedis() {
  const port = await freePort()
  const dir = mkdtempSync(join(tmpdir(), 'worq-bench-'))
  const child = spawnServer(
    serverArgs(
      port,
      dir,
      // Redis 7 allocates a latency histogram per command name after CONFIG RESETSTAT: ~25 KB
      // each, which the memory-per-result row would count against whichever library ran.
      ...(majorVersion() >= 7 ? ['--latency-tracking', 'no'] : []),
      // BENCH_REDIS_CPUS=1 keeps the server's main thread on that CPU (Redis's own
      // `server_cpulist`; the CPU is not reserved: the benchmark's processes may run there too),
      // so that a wake-up never moves it onto the writer's CPU (docs/benchmarks.md, "Where Redis
      // runs").
      ...(process.env.BENCH_REDIS_CPUS ? ['--server_cpulist', process.env.BENCH_REDIS_CPUS] : []),
    ),
  )
  await new Promise((resolve, reject) => {
    child.on('error', err =>
      reject(
        new Error(
          `cannot start redis-server (${err.message}); install it: apt-get install redis-server`,
        ),
      ),
    )
    child.stdout.on('data', d => {
      if (String(d).includes('Ready to accept connections')) resolve()
    })
  })
  return {
    url: `redis://127.0.0.1:${port}/0`,
    version: serverVersion(),
    stop() {
      child.kill('SIGTERM')
      rmSync(dir, { recursive: true, force: true })
    },
  }
}
