/**
 * Runs the `worq` command as a real process (from sources through tsx, or from dist) and lets a
 * test wait for its output lines and its exit, never for a fixed time.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
/** The CLI from sources. */
export const CLI_TS = `${ROOT}lib/cli/main.ts`
/** The built CLI (after `npm run build`). */
export const CLI_DIST = `${ROOT}dist/cli/main.js`
/** The library's entry, from sources (for a tasks module a test writes). */
export const LIB_TS = `${ROOT}lib/index.ts`
/** The tasks fixture. */
export const TASKS = `${ROOT}test/fixtures/worker-tasks.ts`

/** A running `worq` process. */
export interface CliProcess {
  proc: ChildProcess
  /** Every line printed so far, stdout and stderr interleaved. */
  lines: string[]
  /** Resolves with the first line (printed already or later) matching `re`. */
  line(re: RegExp, ms?: number): Promise<string>
  /** Resolves with the exit code (or signal) once the process exited. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
}

const live = new Set<ChildProcess>()
process.on('exit', () => {
  for (const p of live) p.kill('SIGKILL')
})

/** How {@link worq} starts the process. */
export interface WorqOptions {
  /** Run dist/cli/main.js instead of the sources. */
  dist?: boolean
  /** Environment variables to set (on top of this process's). */
  env?: Record<string, string>
}

/** Starts `worq ...args`. */
export function worq(args: string[], { dist = false, env }: WorqOptions = {}): CliProcess {
  const argv = dist ? [CLI_DIST, ...args] : ['--import', 'tsx', CLI_TS, ...args]
  const proc = spawn(process.execPath, argv, {
    stdio: ['ignore', 'pipe', 'pipe'],
    cwd: ROOT,
    ...(env && { env: { ...process.env, ...env } }),
  })
  live.add(proc)
  const lines: string[] = []
  const waiters = new Set<{ re: RegExp; resolve: (l: string) => void }>()
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>(resolve =>
    proc.once('exit', (code, signal) => {
      live.delete(proc)
      resolve({ code, signal })
    }),
  )
  for (const stream of [proc.stdout!, proc.stderr!]) {
    let rest = ''
    stream.on('data', (chunk: Buffer) => {
      const parts = (rest + chunk.toString()).split('\n')
      rest = parts.pop()!
      for (const l of parts) {
        lines.push(l)
        if (process.env.WORQ_TEST_VERBOSE) process.stderr.write(`  [worq ${proc.pid}] ${l}\n`)
        for (const w of waiters) {
          if (!w.re.test(l)) continue
          waiters.delete(w)
          w.resolve(l)
        }
      }
    })
  }
  return {
    proc,
    lines,
    exited,
    line(re, ms = 10_000) {
      const seen = lines.find(l => re.test(l))
      if (seen !== undefined) return Promise.resolve(seen)
      return new Promise((resolve, reject) => {
        const w = { re, resolve }
        const timer = setTimeout(() => {
          waiters.delete(w)
          reject(new Error(`no line matching ${re} within ${ms} ms; got:\n${lines.join('\n')}`))
        }, ms)
        w.resolve = l => (clearTimeout(timer), resolve(l))
        waiters.add(w)
        void exited.then(({ code, signal }) => {
          if (!waiters.delete(w)) return
          clearTimeout(timer)
          reject(
            new Error(
              `worq exited (${code ?? signal}) before printing ${re}:\n${lines.join('\n')}`,
            ),
          )
        })
      })
    },
  }
}

/** Runs `worq ...args` to its end. */
export async function worqRun(
  args: string[],
  opts: WorqOptions = {},
): Promise<{ code: number | null; out: string }> {
  const p = worq(args, opts)
  const { code } = await p.exited
  if (p.proc.stdout!.readable || p.proc.stderr!.readable)
    await new Promise(resolve => p.proc.once('close', resolve))
  return { code, out: p.lines.join('\n') }
}

/** Runs each command line to its end, `parallel` at a time; the results in the same order. */
export async function worqRunAll(
  list: ReadonlyArray<{ args: string[] } & WorqOptions>,
  parallel = 3,
): Promise<Array<{ code: number | null; out: string }>> {
  const results: Array<{ code: number | null; out: string }> = []
  let next = 0
  const lane = async () => {
    while (next < list.length) {
      const i = next++
      const { args, ...opts } = list[i]!
      results[i] = await worqRun(args, opts)
    }
  }
  await Promise.all(Array.from({ length: parallel }, lane))
  return results
}

/** Kills every process this helper started that is still running. */
export function killAll(): void {
  for (const p of live) p.kill('SIGKILL')
}

/** True when the build exists (`npm run build`). */
export function hasDist(): boolean {
  return existsSync(CLI_DIST)
}

/** True while a process with this pid exists. */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}
