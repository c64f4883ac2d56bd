/**
 * A private PostgreSQL server for tests that stop, crash or reconfigure their server: `initdb` into
 * a temporary directory, `pg_ctl start` on a free loopback port with its socket in that directory
 * and trust authentication, run as the `postgres` OS user when the tests run as root (initdb
 * refuses root). `stop()` stops it and removes the directory; a process that exits without
 * calling it stops the server (`-m immediate`) and removes the directory on its way out. The
 * machine's shared server (127.0.0.1:5432) is never touched.
 */
import { execFile, execFileSync } from 'node:child_process'
import { chownSync, existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { freePort } from './redis-server.js'

const run = promisify(execFile)

/** Where Debian installs the server's programs; `PG_BIN` names another directory. */
const BIN = process.env.PG_BIN ?? findBin()

function findBin(): string {
  for (const v of ['17', '16', '15', '14', '13']) {
    const dir = `/usr/lib/postgresql/${v}/bin`
    if (existsSync(join(dir, 'initdb'))) return dir
  }
  return '/usr/lib/postgresql/15/bin'
}

export const INSTALL_PG =
  'initdb and pg_ctl were not found (set PG_BIN to their directory, or apt-get install postgresql); the server-restart tests start a private PostgreSQL server with them'

/** How `pg_ctl` shuts the server down: `fast` ends sessions cleanly, `immediate` is a crash. */
export type ShutdownMode = 'fast' | 'immediate'

/** A running private PostgreSQL server. */
export interface PostgresServer {
  /** `postgres://postgres@127.0.0.1:<port>/postgres`. */
  readonly url: string
  readonly port: number
  /** Its temporary directory (data directory and socket), removed by `stop()`. */
  readonly dir: string
  /** The URL of database `name` on this server. */
  urlOf(name: string): string
  /** Stops it (`-m fast` by default), then resolves once it is back and accepting connections. */
  restart(mode?: ShutdownMode): Promise<void>
  /** Stops it, keeping its data, until `start()`. */
  halt(mode?: ShutdownMode): Promise<void>
  /** Starts it again after `halt()`; resolves once it accepts connections. */
  start(): Promise<void>
  /** Stops it and removes its directory. */
  stop(): Promise<void>
}

const asRoot = process.getuid?.() === 0
/** Live servers' data directories, stopped and removed at exit. */
const live = new Map<string, string>()

process.on('exit', () => {
  for (const [data, dir] of live) {
    try {
      execFileSync(...command('pg_ctl', ['-D', data, '-m', 'immediate', '-w', 'stop']), {
        stdio: 'ignore',
      })
    } catch {
      // Already stopped.
    }
    if (!existsSync(join(data, 'postmaster.pid'))) rmSync(dir, { recursive: true, force: true })
  }
})

/** A server program's command line, as the postgres OS user when we are root. */
function command(program: string, args: string[]): [string, string[]] {
  const bin = join(BIN, program)
  return asRoot ? ['runuser', ['-u', 'postgres', '--', bin, ...args]] : [bin, args]
}

async function ctl(args: string[]): Promise<void> {
  await run(...command('pg_ctl', args), { timeout: 60_000 })
}

/** Creates, configures and starts a private server; throws, saying how to install one, without. */
export async function startPostgresServer(
  settings: Record<string, string> = {},
): Promise<PostgresServer> {
  if (!existsSync(join(BIN, 'initdb'))) throw new Error(INSTALL_PG)
  const dir = mkdtempSync(join(tmpdir(), 'worq-pg-'))
  const data = join(dir, 'data')
  live.set(data, dir)
  try {
    if (asRoot) chownSync(dir, uidOf('postgres'), gidOf('postgres'))
    await run(
      ...command('initdb', ['-D', data, '-U', 'postgres', '--auth=trust', '-N', '-E', 'UTF8']),
      { timeout: 120_000 },
    )
    const port = await freePort()
    const options = [
      `-p ${port}`,
      `-k ${dir}`,
      '-c listen_addresses=127.0.0.1',
      ...Object.entries(settings).map(([k, v]) => `-c ${k}=${v}`),
    ].join(' ')
    const log = join(dir, 'server.log')
    // One pg_ctl at a time: a test that failed mid-restart must not race the next one's stop.
    let last: Promise<unknown> = Promise.resolve()
    const serial = (args: string[]) => {
      const next = last.catch(() => undefined).then(() => ctl(args))
      last = next
      return next
    }
    await serial(['-D', data, '-l', log, '-o', options, '-w', 'start'])
    const urlOf = (name: string) => `postgres://postgres@127.0.0.1:${port}/${name}`
    return {
      url: urlOf('postgres'),
      port,
      dir,
      urlOf,
      async restart(mode: ShutdownMode = 'fast') {
        // restart keeps the options of the last start (postmaster.opts).
        await serial(['-D', data, '-l', log, '-m', mode, '-w', 'restart'])
      },
      async halt(mode: ShutdownMode = 'fast') {
        await serial(['-D', data, '-m', mode, '-w', 'stop'])
      },
      async start() {
        await serial(['-D', data, '-l', log, '-o', options, '-w', 'start'])
      },
      async stop() {
        if (!live.has(data)) return
        await serial(['-D', data, '-m', 'fast', '-w', 'stop']).catch(() =>
          serial(['-D', data, '-m', 'immediate', '-w', 'stop']).catch(() => undefined),
        )
        // Never remove the directory of a server still running (it would go on without it).
        if (existsSync(join(data, 'postmaster.pid')))
          throw new Error(`the private PostgreSQL server in ${dir} did not stop; see ${log}`)
        live.delete(data)
        rmSync(dir, { recursive: true, force: true })
      },
    }
  } catch (err) {
    await ctl(['-D', data, '-m', 'immediate', '-w', 'stop']).catch(() => undefined)
    live.delete(data)
    rmSync(dir, { recursive: true, force: true })
    throw err
  }
}

function uidOf(user: string): number {
  return Number(execFileSync('id', ['-u', user], { encoding: 'utf8' }).trim())
}

function gidOf(user: string): number {
  return Number(execFileSync('id', ['-g', user], { encoding: 'utf8' }).trim())
}
