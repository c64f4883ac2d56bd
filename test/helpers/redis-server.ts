/**
 * A private redis-server for tests: a free loopback port, a temporary directory, no persistence
 * (unless asked), stopped at process exit. With `REDIS_URL` set, tests use that server instead and
 * nothing is started.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Redis, type RedisOptions } from 'ioredis'

/** Options of {@link startRedis}. */
export interface RedisServerOptions {
  /** Keep an append-only file (fsync always) in the server's directory, so a restart keeps data. @default false */
  appendonly?: boolean
  /** More redis-server arguments (cluster mode, replication). */
  args?: string[]
  /** Run as a sentinel (`--sentinel`) from the config file `config` in its directory. */
  sentinel?: string
}

/** A running private redis-server. */
export interface RedisServer {
  /** `redis://127.0.0.1:<port>/0`. */
  url: string
  /** The loopback port it listens on. */
  port: number
  /** Its temporary working directory (removed by `stop()` and at exit). */
  dir: string
  /** Stops the server (SIGTERM, then waits for exit). */
  stop(): Promise<void>
  /**
   * Stops and starts it again on the same port and directory. `SIGKILL` makes it a crash (no
   * shutdown save or AOF rewrite: only what was already written to disk survives).
   */
  restart(signal?: NodeJS.Signals): Promise<void>
}

export const INSTALL =
  'redis-server was not found on PATH; the Redis tests need it: apt-get install redis-server (or brew install redis), or set REDIS_URL to a server the tests may use'

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer()
    srv.unref()
    srv.on('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number }
      srv.close(() => resolve(port))
    })
  })
}

/** Whether `port` on loopback can be listened on now. */
export function isFree(port: number): Promise<boolean> {
  return new Promise(resolve => {
    const srv = createServer()
    srv.unref()
    srv.once('error', () => resolve(false))
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)))
  })
}

export function hasBinary(): boolean {
  return spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).status === 0
}

const children = new Set<ChildProcess>()
/** Temporary directories removed at exit. */
export const dirs = new Set<string>()
process.on('exit', () => {
  for (const c of children) c.kill('SIGKILL')
  for (const d of dirs) rmSync(d, { recursive: true, force: true })
})

/** Starts redis-server on `port` in `dir` and resolves once it accepts connections. */
export async function launch(
  port: number,
  dir: string,
  options: RedisServerOptions,
): Promise<ChildProcess> {
  const args = options.sentinel ? [join(dir, options.sentinel), '--sentinel'] : []
  args.push('--port', String(port), '--bind', '127.0.0.1', '--dir', dir)
  if (!options.sentinel) {
    args.push('--save', '', '--appendonly', options.appendonly ? 'yes' : 'no')
    if (options.appendonly) args.push('--appendfsync', 'always')
  }
  args.push(...(options.args ?? []))
  const child = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] })
  children.add(child)
  child.once('exit', () => children.delete(child))
  await new Promise<void>((resolve, reject) => {
    let out = ''
    const onData = (chunk: Buffer) => {
      out += chunk.toString()
      if (out.includes('Ready to accept connections') || out.includes('+monitor master')) {
        child.stdout!.off('data', onData)
        child.stdout!.resume()
        resolve()
      }
    }
    child.stdout!.on('data', onData)
    child.stderr!.resume()
    child.once('error', err =>
      reject((err as NodeJS.ErrnoException).code === 'ENOENT' ? new Error(INSTALL) : err),
    )
    child.once('exit', code => reject(new Error(`redis-server exited with ${code}: ${out}`)))
  })
  child.removeAllListeners('exit')
  child.once('exit', () => children.delete(child))
  return child
}

/** Stops a server started with {@link launch} and resolves when it has exited. */
export function terminate(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve()
  return new Promise(resolve => {
    child.once('exit', () => resolve())
    child.kill(signal)
  })
}

/**
 * Runs `fn` on a new connection to the server on `port` alone (no retries), then closes it;
 * `password` for a server started with `--requirepass`.
 */
export async function onNode<T>(
  port: number,
  fn: (r: Redis) => Promise<T>,
  password?: string,
): Promise<T> {
  const r = new Redis({
    port,
    host: '127.0.0.1',
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    ...(password !== undefined && { password }),
  })
  r.on('error', () => undefined)
  try {
    await r.connect()
    return await fn(r)
  } finally {
    r.disconnect()
  }
}

/** Starts a private redis-server. Throws, saying how to install it, when there is none. */
export async function startRedis(options: RedisServerOptions = {}): Promise<RedisServer> {
  if (!hasBinary()) throw new Error(INSTALL)
  const port = await freePort()
  const dir = mkdtempSync(join(tmpdir(), 'worq-redis-'))
  dirs.add(dir)
  let child = await launch(port, dir, options)
  return {
    url: `redis://127.0.0.1:${port}/0`,
    port,
    dir,
    async stop() {
      await terminate(child)
      rmSync(dir, { recursive: true, force: true })
      dirs.delete(dir)
    },
    async restart(signal) {
      await terminate(child, signal)
      child = await launch(port, dir, options)
    },
  }
}

let shared: Promise<RedisServer> | undefined

/**
 * The URL of the Redis the whole test run shares: `REDIS_URL`, or a private server started on
 * first use and killed when the process exits.
 */
export async function redisUrl(): Promise<string> {
  if (process.env.REDIS_URL) return process.env.REDIS_URL
  shared ??= startRedis()
  return (await shared).url
}

/**
 * Registers mocha hooks that open an admin connection to the shared test Redis; read `url` and
 * `admin` inside tests.
 */
export function useRedisAdmin(): { url: string; admin: Redis } {
  const ctx = {} as { url: string; admin: Redis }
  before(async () => {
    ctx.url = await redisUrl()
    ctx.admin = helperRedis(ctx.url)
  })
  after(async () => {
    await ctx.admin.quit()
  })
  return ctx
}

/**
 * Registers mocha hooks that start a server of the suite's own (for tests that flush it or read
 * its command counts) with an admin connection, and stop it after; read `server` and `admin`
 * inside tests.
 */
export function usePrivateRedis(): { server: RedisServer; admin: Redis } {
  const ctx = {} as { server: RedisServer; admin: Redis }
  before(async () => {
    ctx.server = await startRedis()
    ctx.admin = helperRedis(ctx.server.url)
  })
  after(async () => {
    await ctx.admin.quit()
    await ctx.server.stop()
  })
  return ctx
}

/**
 * An ioredis client for a test's own commands (a URL, a port, or options). Its error listener
 * keeps ioredis from printing "Unhandled error event" while it reconnects to a server the test
 * killed, paused or cut; a command that fails still rejects.
 */
export function helperRedis(target: string | number | RedisOptions): Redis {
  const r =
    typeof target === 'string'
      ? new Redis(target)
      : typeof target === 'number'
        ? new Redis(target)
        : new Redis(target)
  r.on('error', () => undefined)
  return r
}
