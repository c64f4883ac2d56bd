// Contention on demand: K busy processes (a pure CPU loop each, niceness 0) for the length of a run,
// so that a run "on a loaded machine" can be repeated instead of waited for.
//
//   node bench/load.js <K> <command> [args…]
//
// starts K busy processes, runs the command (its output passes through), stops them and exits with
// the command's status; e.g. `node bench/load.js 4 node bench/runner.js worq e2e-window 20000 50`
// (with REDIS_URL of a private server, as bench/ab.js starts one). K = 0 runs the command alone.
// `startLoad(k)` does the same from a script: it resolves once the K processes run, to an object
// whose `stop()` ends them.
//
// Each busy process runs in a session of its own, as another engineer's test process does: Linux's
// autogroup (on here: /proc/sys/kernel/sched_autogroup_enabled) shares the CPU between sessions,
// so K processes in one session would weigh as one. On this 2-core machine K = 4 cuts the closed
// loop's throughput to about a quarter (docs/redis.md, "The closed loop on a loaded machine").
// Every process started here is stopped by its PID when this process exits or is interrupted.
import { spawn } from 'node:child_process'
import { setPriority } from 'node:os'
import { fileURLToPath } from 'node:url'

const busy = new Set()
function stopAll() {
  for (const child of busy) child.kill('SIGKILL')
  busy.clear()
}
let stopsWired = false

/** Starts `k` busy processes; resolves to `{ pids, stop() }` once each runs its loop. */
export async function startLoad(k) {
  if (!stopsWired) {
    stopsWired = true
    process.on('exit', stopAll)
    for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'])
      process.once(signal, () => {
        stopAll()
        if (process.listenerCount(signal) === 0) process.kill(process.pid, signal)
      })
  }
  const children = []
  for (let i = 0; i < k; i++) {
    // The loop starts after the line that says so, so a run begins under the whole load.
    const child = spawn(process.execPath, ['-e', 'process.stdout.write("busy\\n"); for (;;) {}'], {
      stdio: ['ignore', 'pipe', 'inherit'],
      detached: true,
    })
    busy.add(child)
    child.once('exit', () => busy.delete(child))
    children.push(child)
  }
  await Promise.all(
    children.map(
      child =>
        new Promise((resolve, reject) => {
          child.once('error', reject)
          child.stdout.once('data', resolve)
        }),
    ),
  )
  for (const child of children) {
    try {
      setPriority(child.pid, 0)
    } catch {
      // Not allowed to raise a priority: the process keeps this one's niceness.
    }
  }
  return {
    pids: children.map(c => c.pid),
    stop() {
      for (const child of children) {
        child.kill('SIGKILL')
        busy.delete(child)
      }
    },
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [, , kArg, command, ...args] = process.argv
  const k = Number(kArg)
  if (!Number.isInteger(k) || k < 0 || !command) {
    console.error('usage: node bench/load.js <K> <command> [args…]')
    process.exit(2)
  }
  const load = await startLoad(k)
  const child = spawn(command, args, { stdio: 'inherit' })
  const code = await new Promise(resolve =>
    child.once('exit', (status, signal) => resolve(status ?? (signal ? 1 : 0))),
  )
  load.stop()
  process.exit(code)
}
