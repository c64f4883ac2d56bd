/**
 * `worq dashboard` as a real process against the test Redis: it prints its address, serves the
 * API, needs the token when given one, refuses a non-loopback host without one, and stops cleanly
 * on SIGINT and SIGTERM.
 */
import { expect } from 'chai'
import { connect } from 'node:net'
import { killAll, worq, worqRun } from '../helpers/cli.js'
import { buildDashboardPage } from '../helpers/dashboard-page.js'
import { freePort, redisUrl } from '../helpers/redis-server.js'
import { uniqueQueue } from '../helpers/util.js'

async function address(p: ReturnType<typeof worq>): Promise<string> {
  const line = await p.line(/^worq dashboard: http:\/\//)
  return /(http:\/\/\S+)\//.exec(line)![1]!
}

describe('cli: worq dashboard', function () {
  let url: string
  before(async () => {
    url = await redisUrl()
    // The page the tests fetch at `/` (a fresh clone has no build: it answered 503 there).
    buildDashboardPage()
  })
  after(() => killAll())

  it('serves the queues on loopback without a token, says so, and stops on SIGINT with exit 0', async () => {
    const [a, b] = [uniqueQueue('dash'), uniqueQueue('dash')]
    const p = worq(['dashboard', url, '--queue', a, '--queue', b, '--port', '0'])
    const base = await address(p)
    expect(base).to.match(/^http:\/\/127\.0\.0\.1:\d+$/)
    await p.line(/no token .* loopback only/)
    const health = (await (await fetch(`${base}/api/health`)).json()) as { ok: boolean }
    expect(health.ok).to.equal(true)
    const config = (await (await fetch(`${base}/api/config`)).json()) as { queues: string[] }
    expect(config.queues).to.deep.equal([a, b])
    p.proc.kill('SIGINT')
    expect((await p.exited).code).to.equal(0)
    expect(p.lines).to.include('worq dashboard: stopped')
  })

  it('with --token every API request needs it; --read-only refuses changes; SIGTERM stops it', async () => {
    const queue = uniqueQueue('dash')
    const p = worq([
      'dashboard',
      url,
      '-q',
      queue,
      '--port',
      '0',
      '--token',
      'tok-123',
      '--read-only',
    ])
    const base = await address(p)
    expect(p.lines.join('\n')).to.not.match(/no token/)
    expect((await fetch(`${base}/api/queues`)).status).to.equal(401)
    const auth = { authorization: 'Bearer tok-123' }
    expect((await fetch(`${base}/api/queues`, { headers: auth })).status).to.equal(200)
    const pause = await fetch(`${base}/api/queues/${queue}/pause`, {
      method: 'POST',
      headers: auth,
    })
    expect(pause.status).to.equal(403)
    p.proc.kill('SIGTERM')
    expect((await p.exited).code).to.equal(0)
  })

  it("slow headers and a slow body get 408 after 10 s (Node's defaults held them 60 s and 300 s)", async function () {
    this.timeout(40_000)
    const p = worq(['dashboard', url, '-q', uniqueQueue('dash'), '--port', '0'])
    const { hostname, port } = new URL(await address(p))
    /** Sends `text` and never ends the request; resolves with the answer's status line and body. */
    const stalled = (text: string) =>
      new Promise<{ ms: number; answer: string }>((resolve, reject) => {
        const started = Date.now()
        const socket = connect(Number(port), hostname, () => socket.write(text))
        let answer = ''
        socket.on('data', c => (answer += c.toString('utf8')))
        socket.on('error', reject)
        socket.on('close', () => resolve({ ms: Date.now() - started, answer }))
      })
    const [headers, body] = await Promise.all([
      stalled(`GET /api/queues HTTP/1.1\r\nHost: ${hostname}\r\n`),
      stalled(
        `POST /api/tasks HTTP/1.1\r\nHost: ${hostname}\r\nContent-Type: application/json\r\n` +
          'Content-Length: 50\r\n\r\n{',
      ),
    ])
    expect(headers.answer).to.match(/^HTTP\/1\.1 408 /)
    expect(headers.ms).to.be.within(9_000, 13_000)
    expect(body.answer).to.match(/^HTTP\/1\.1 408 /)
    expect(body.answer).to.contain('"code":"ERR_WORQ_HTTP_BODY_TIMEOUT"')
    expect(body.ms).to.be.within(9_000, 13_000)
    p.proc.kill('SIGTERM')
    expect((await p.exited).code).to.equal(0)
    const help = await worqRun(['dashboard', '--help'])
    expect(help.out).to.match(/10 s for its request's headers, 10 s for its body/)
  })

  it('a backend it cannot reach does not stop it: the API answers 503, and --help says so (it said exit 1)', async () => {
    const unreachable = `redis://127.0.0.1:${await freePort()}/0` // nothing listens there
    const p = worq(['dashboard', unreachable, '--port', '0'])
    const base = await address(p)
    expect((await fetch(`${base}/`)).status).to.equal(200)
    const health = await fetch(`${base}/api/health`)
    expect(health.status).to.equal(503)
    expect(((await health.json()) as { ok: boolean }).ok).to.equal(false)
    expect(p.proc.exitCode).to.equal(null)
    p.proc.kill('SIGTERM')
    expect((await p.exited).code).to.equal(0)
    const help = await worqRun(['dashboard', '--help'])
    expect(help.out).to.match(/A backend that cannot be reached does not stop it/)
    expect(help.out).to.match(/the API answers 503/)
    expect(help.out).to.not.match(/reach the backend/)
  })

  it('refuses a non-loopback --host without a token (exit 2), and a bad queue name', async () => {
    const open = await worqRun(['dashboard', url, '--host', '0.0.0.0', '--port', '0'])
    expect(open.code).to.equal(2)
    expect(open.out).to.match(/refusing to serve on 0\.0\.0\.0 without a token/)
    const bad = await worqRun(['dashboard', url, '--queue', 'a..b'])
    expect(bad.code).to.equal(2)
    expect(bad.out).to.match(/queue name/)
  })
})
