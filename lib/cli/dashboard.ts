/**
 * `worq dashboard <url>`: serves the HTTP API and the live dashboard page (worq/http) of one or
 * more queues until SIGINT or SIGTERM, then closes the event streams, the server and the brokers.
 * Without a token it binds the loopback interface only, and says so.
 */
import { Command } from 'commander'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { getBroker } from '../broker.js'
import { CliExit, EXIT } from './exit-codes.js'
import { integer, queueName } from './parse.js'

/** Options of `worq dashboard`. */
export interface DashboardCommandOptions {
  queue: string[]
  port: number
  host?: string
  token?: string
  readOnly?: boolean
}

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '::1'])

/** Serves the dashboard until a signal; resolves with the exit code. */
export async function runDashboard(url: string, o: DashboardCommandOptions): Promise<number> {
  const secret = await checkedToken(o.token, process.env.WORQ_TOKEN || undefined)
  const host = o.host ?? '127.0.0.1'
  if (!secret && !LOOPBACK.has(host))
    throw new CliExit(
      EXIT.USAGE,
      `refusing to serve on ${host} without a token: anyone who reaches it could cancel and purge tasks. Set --token or WORQ_TOKEN, or leave --host out (loopback only)`,
    )
  // Loaded here, not at the top: the other commands start without the HTTP surface.
  const { SERVER_TIMEOUTS, worqHttp } = await import('../http/index.js')
  const queues = o.queue.length ? [...new Set(o.queue)] : ['default']
  const brokers = queues.map(q => getBroker(url, q))
  const handler = worqHttp(brokers, {
    ...(secret && { token: secret }),
    readOnly: o.readOnly === true,
    onError: err =>
      process.stderr.write(`worq dashboard: ${(err as Error).stack ?? String(err)}\n`),
  })
  // Node's defaults let a slow client hold a connection for minutes (docs/http.md, "Timeouts").
  const server = createServer(SERVER_TIMEOUTS, handler)
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(o.port, host, () => resolve())
    })
  } catch (err) {
    await Promise.all(brokers.map(b => b.close().catch(() => undefined)))
    throw new CliExit(EXIT.ERROR, `cannot listen on ${host}:${o.port}: ${(err as Error).message}`)
  }
  const { address, port } = server.address() as AddressInfo
  const shown = address.includes(':') ? `[${address}]` : address
  process.stdout.write(
    `worq dashboard: http://${shown}:${port}/ serving queue${queues.length > 1 ? 's' : ''} ${queues.join(', ')}` +
      `${o.readOnly ? ' (read-only)' : ''}; Ctrl-C stops it\n`,
  )
  if (!secret)
    process.stdout.write(
      'worq dashboard: no token (--token or WORQ_TOKEN), so it listens on loopback only\n',
    )
  await new Promise<void>(resolve => {
    process.once('SIGINT', () => resolve())
    process.once('SIGTERM', () => resolve())
  })
  process.stdout.write('worq dashboard: stopping\n')
  await handler.close()
  server.closeAllConnections()
  await new Promise<void>(resolve => server.close(() => resolve()))
  await Promise.all(brokers.map(b => b.close().catch(() => undefined)))
  process.stdout.write('worq dashboard: stopped\n')
  return EXIT.OK
}

/** The token from `--token` or WORQ_TOKEN, checked as the API takes it (checkToken's rule). */
async function checkedToken(
  flag: string | undefined,
  env: string | undefined,
): Promise<string | undefined> {
  const token = flag ?? env
  if (token === undefined) return undefined
  // Loaded here, not at the top: the other commands start without the HTTP surface.
  const { checkToken } = await import('../http/auth.js')
  try {
    return checkToken(token)
  } catch {
    throw new CliExit(
      EXIT.USAGE,
      `Expected ${flag === undefined ? 'WORQ_TOKEN' : '--token'} to be 1–1024 visible ASCII characters (no spaces), as sent in "Authorization: Bearer <token>"`,
    )
  }
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, queueName(value)]
}

/** The `dashboard` command. */
export function dashboardCommand(run: (code: Promise<number>) => void): Command {
  return new Command('dashboard')
    .description(
      'Serve the live dashboard and the JSON API of one or more queues (docs/dashboard.md).',
    )
    .argument('<url>', 'backend URL, e.g. redis://127.0.0.1:6379/0')
    .option('-q, --queue <name>', 'a queue to serve (repeat for several)', collect, [] as string[])
    .option(
      '-p, --port <port>',
      'port to listen on, 0 to 65535 (0: any free port)',
      integer(0, 65_535),
      8080,
    )
    .option(
      '--host <host>',
      'address to listen on; without a token only loopback is allowed',
      undefined,
    )
    .option(
      '--token <token>',
      'every API request needs "Authorization: Bearer <token>" (or set WORQ_TOKEN)',
    )
    .option('--read-only', 'answer every change (cancel, retry, pause, purge, submit) with 403')
    .addHelpText(
      'after',
      `
The page asks for the token and keeps it for the browser tab (sessionStorage).

A backend that cannot be reached does not stop it: it serves the page, /api/health says
so and the API answers 503 until the backend answers (the reason is printed on stderr).

A client gets 10 s for its request's headers, 10 s for its body once read, 30 s for the
whole request (then 408), and an idle keep-alive connection closes after 5 s; an event
stream lasts as long as its client reads it (docs/http.md, "Timeouts").

Exit codes: 0 stopped by SIGINT/SIGTERM, 1 a bad URL or cannot listen (port in use, address
not available), 2 usage (including a non-loopback --host without a token).`,
    )
    .action((url: string, options: DashboardCommandOptions) => run(runDashboard(url, options)))
}
