/**
 * `worq worker` as a real process on the test Redis: signals, a killed worker, crashing tasks in
 * child processes, children outliving nothing, and live-worker registration.
 */
import { expect } from 'chai'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createServer, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { getBroker, task, TaskExpired, TaskFailure, type Broker } from '../../lib/index.js'
import type { w as space } from '../fixtures/worker-tasks.js'
import { alive, killAll, LIB_TS, TASKS, worq, worqRun } from '../helpers/cli.js'
import { redisUrl } from '../helpers/redis-server.js'
import { uniqueQueue, until } from '../helpers/util.js'

describe('cli: worq worker', function () {
  let url: string
  let queue: string
  let broker: Broker

  before(async () => {
    url = await redisUrl()
  })
  beforeEach(() => {
    queue = uniqueQueue('cliw')
    broker = getBroker(url, queue)
  })
  afterEach(async () => {
    killAll()
    await broker.purge().catch(() => undefined)
    await broker.close()
  })

  const start = (...extra: string[]) =>
    worq(['worker', url, '--tasks', TASKS, '--queue', queue, '--sweep-interval', '200', ...extra])

  it('SIGTERM while a task runs: the task completes and the worker exits 0 within the timeout (JSON logs)', async () => {
    const w = start('--shutdown-timeout', '5000', '--log-format', 'json')
    await w.line(/"event":"worker:start"/)
    const d = await broker.queue<typeof space>().w.sleep(300)
    await w.line(/"event":"task:start"/)
    const stoppedAt = Date.now()
    w.proc.kill('SIGTERM')
    expect((await w.exited).code).to.equal(0)
    expect(Date.now() - stoppedAt).to.be.below(5000)
    expect(await d.result(1000)).to.equal(300)
    const events = w.lines.filter(l => l.startsWith('{')).map(l => JSON.parse(l).event)
    expect(events.slice(events.indexOf('worker:stopping'))).to.deep.equal([
      'worker:stopping',
      'task:end',
      'worker:stop',
    ])
    const end = w.lines.map(l => JSON.parse(l)).find(e => e.event === 'task:end')
    expect(end).to.include({ name: 'w.sleep', queue, id: d.id, status: 'completed' })
  })

  it('a second SIGTERM stops at once (exit 143) and hands the running task back', async () => {
    const w = start('--shutdown-timeout', '60000')
    await w.line(/worker:start/)
    const d = await task(broker.queue<typeof space>().w.hangOnFirstAttempt, { attempts: 2 })()
    await w.line(/task:start/)
    w.proc.kill('SIGTERM')
    await w.line(/worker:stopping on SIGTERM/)
    w.proc.kill('SIGTERM')
    expect((await w.exited).code).to.equal(143)
    expect(await d.status()).to.equal('enqueued')
    const next = start()
    expect(await d.result(5000)).to.equal('attempt 2')
    next.proc.kill('SIGTERM')
    expect((await next.exited).code).to.equal(0)
  })

  /**
   * SIGKILLs a worker started with `flags` while it runs a sleep enqueued with `heartrate` (its own
   * default when undefined); the waiter must get TaskExpired within the lease (2 × 100 + 1000 ms)
   * plus the 200 ms sweep interval (1.6 s), and a margin for a loaded machine.
   */
  async function killMidTask(flags: string[], heartrate: number | undefined): Promise<void> {
    const w = start(...flags)
    await w.line(/worker:start/)
    const sleep = broker.queue<typeof space>().w.sleep
    const d = await (heartrate === undefined ? sleep : task(sleep, { heartrate }))(60_000)
    await w.line(/task:start/)
    // The sweep runs in live workers: one started before the kill (the task is already w's), so
    // that what is timed is the recovery, not a process's start-up on a loaded machine.
    const sweeper = start()
    await sweeper.line(/worker:start/)
    const killedAt = Date.now()
    w.proc.kill('SIGKILL')
    const err = await d.result(10_000).catch((e: unknown) => e)
    expect(err).to.be.instanceOf(TaskExpired)
    expect(Date.now() - killedAt).to.be.below(1600 + 1300)
    sweeper.proc.kill('SIGTERM')
    await sweeper.exited
  }

  it('SIGKILL of the worker mid-task: the waiter gets TaskExpired within lease + sweep interval', () =>
    killMidTask([], 100))

  // The task's own heartrate is the default (10 s, a lease of 21 s); the worker's cuts it.
  it('SIGKILL of a worker started with --heartrate: a task of the default heartrate expires within 2 × that + 1 s + sweep interval', () =>
    killMidTask(['--heartrate', '100'], undefined))

  it('its stdout closing (worq worker | head -n 1) stops it as on SIGTERM: the running task completes, exit 1 (it died of EPIPE mid-task)', async () => {
    const w = start('--shutdown-timeout', '10000')
    await w.line(/worker:start/)
    const q = broker.queue<typeof space>()
    const running = await q.w.sleep(4000)
    await w.line(/task:start w\.sleep/)
    w.proc.stdout!.destroy() // the reader goes: the next log line meets EPIPE
    const next = await q.w.add(1, 2) // its task:start line is that next one
    await w.line(/^worq worker: stdout closed \(.*EPIPE\).*stopping as on SIGTERM/)
    expect(await running.status()).to.equal('processing')
    expect(await next.result(5000)).to.equal(3)
    expect(await running.result(10_000)).to.equal(4000)
    expect((await w.exited).code).to.equal(1)
    await w.line(/^worq: stdout closed .*: the worker stopped as on SIGTERM$/)
  })

  describe('a signal while an in-process tasks module loads (top-level await)', () => {
    let gate: ReturnType<typeof createServer>
    let connected: Promise<Socket>
    let tasks: string
    let dir: string

    beforeEach(async () => {
      // The module's top-level await waits for a byte from this server: the test decides when
      // the load ends, and its connection says that the load has begun.
      gate = createServer()
      connected = new Promise(resolve => gate.once('connection', resolve))
      await new Promise<void>(resolve => gate.listen(0, '127.0.0.1', resolve))
      const { port } = gate.address() as { port: number }
      const lib = pathToFileURL(LIB_TS).href
      dir = mkdtempSync(join(tmpdir(), 'worq-slow-'))
      tasks = join(dir, 'slow-tasks.mjs')
      writeFileSync(
        tasks,
        `import { connect } from 'node:net'
import { TaskSpace } from ${JSON.stringify(lib)}
await new Promise((resolve, reject) => {
  const socket = connect(${port}, '127.0.0.1')
  socket.once('data', () => resolve(socket.destroy()))
  socket.once('error', reject)
})
export const slow = new TaskSpace('slow', { ok: () => 'ok' })
`,
      )
    })
    afterEach(() => {
      gate.close()
      rmSync(dir, { recursive: true, force: true })
    })

    it('stops it gracefully once the module has loaded, before the pool starts: exit 0 (it was killed by the signal, no log)', async () => {
      const w = worq(['worker', url, '--tasks', tasks, '--queue', queue])
      const socket = await connected
      w.proc.kill('SIGTERM')
      await w.line(/worker:stopping on SIGTERM while starting/)
      socket.write('go')
      expect(await w.exited).to.deep.equal({ code: 0, signal: null })
      expect(w.lines.some(l => /worker:stop \S+$/.test(l))).to.equal(true)
      expect(w.lines.some(l => /worker:start/.test(l))).to.equal(false)
      const { backend } = await broker.backend()
      expect((await backend.inspect(queue)).workers).to.deep.equal([])
    })

    it('a second signal during the load stops it at once (exit 143)', async () => {
      const w = worq(['worker', url, '--tasks', tasks, '--queue', queue])
      await connected
      w.proc.kill('SIGTERM')
      await w.line(/worker:stopping on SIGTERM while starting/)
      w.proc.kill('SIGTERM')
      expect(await w.exited).to.deep.equal({ code: 143, signal: null })
      expect(
        w.lines.some(l => /worker:stop at once \(second SIGTERM\) while starting/.test(l)),
      ).to.equal(true)
    })
  })

  it('--heartrate below 10 ms is a usage error (exit 2) that names the option', async () => {
    const r = await worqRun(['worker', url, '--tasks', TASKS, '--heartrate', '5'])
    expect(r.code).to.equal(2)
    expect(r.out).to.match(/--heartrate/)
  })

  it('SIGKILL of the worker mid-task with attempts left: another worker runs it and the waiter gets the value', async () => {
    const w = start()
    await w.line(/worker:start/)
    const d = await task(broker.queue<typeof space>().w.hangOnFirstAttempt, {
      heartrate: 100,
      attempts: 2,
    })()
    await w.line(/task:start/)
    w.proc.kill('SIGKILL')
    const other = start()
    expect(await d.result(10_000)).to.equal('attempt 2')
    await other.line(/pool:swept 1/)
    other.proc.kill('SIGTERM')
    expect((await other.exited).code).to.equal(0)
  })

  it('with --processes: exit, async throw and a blocked event loop fail only their own task; the worker lives on', async () => {
    const w = start('--processes', '1', '--kill-grace', '300')
    await w.line(/worker:start/)
    const q = broker.queue<typeof space>()
    const failure = async (p: Promise<unknown>) => {
      const e = await p.catch((err: unknown) => err)
      expect(e).to.be.instanceOf(TaskFailure)
      return (e as TaskFailure).remote
    }
    const exit = await failure((await q.w.exit(9)).result(10_000))
    expect(exit).to.include({ name: 'WorkerCrashed' })
    expect(exit.message).to.match(/exit code 9/)
    const thrown = await failure((await q.w.throwLater('oops')).result(10_000))
    expect(thrown.message).to.match(/uncaught exception RangeError: oops/)
    // blocked past its lease (2 × 50 + 1000 ms): the parent renews it, the task completes
    expect(await (await task(q.w.block, { heartrate: 50 })(1500)).result(10_000)).to.equal(
      'unblocked',
    )
    const hung = await failure(
      task(q.w.blockForever, { timeout: 100 })().then(d => d.result(10_000)),
    )
    expect(hung.name).to.equal('TaskTimeout')
    expect(await (await q.w.add(1, 2)).result(10_000)).to.equal(3)
    expect(w.lines.filter(l => /child:exit .* crashed/.test(l))).to.have.length(2)
    expect(w.lines.filter(l => /child:exit .* timeout/.test(l))).to.have.length(1)
    expect(w.lines.some(l => /lease:lost/.test(l))).to.equal(false)
    expect(w.proc.exitCode).to.equal(null)
    w.proc.kill('SIGTERM')
    expect((await w.exited).code).to.equal(0)
  })

  it('--max-tasks-per-child 3 with 4 tasks: two child pids, per-child counts 1, 2, 3, 1', async () => {
    const w = start('--processes', '1', '--max-tasks-per-child', '3')
    await w.line(/worker:start/)
    const q = broker.queue<typeof space>()
    const runs: Array<{ pid: number; count: number }> = []
    for (let i = 0; i < 4; i++) runs.push((await (await q.w.whoami()).result(10_000)) as never)
    expect(runs.map(r => r.count)).to.deep.equal([1, 2, 3, 1])
    expect(new Set(runs.map(r => r.pid)).size).to.equal(2)
    await w.line(/child:exit pid \d+ recycled \(code 0\) after 3 task/)
    w.proc.kill('SIGTERM')
    await w.exited
  })

  it('killing the worker makes its children exit', async () => {
    const w = start('--processes', '2')
    await w.line(/worker:start/)
    const pids = w.lines
      .map(l => /child:ready pid (\d+)/.exec(l)?.[1])
      .filter(Boolean)
      .map(Number)
    expect(pids).to.have.length(2)
    expect(pids.every(alive)).to.equal(true)
    w.proc.kill('SIGKILL')
    await w.exited
    await until(() => !pids.some(alive), 5000, 'the children to exit')
  })

  it('worq info lists a live worker, and stops listing it after it dies', async () => {
    const w = start()
    await w.line(/worker:start/)
    const listed = async () => {
      const r = await worqRun(['info', url, '--queue', queue, '--json'])
      return (JSON.parse(r.out).workers as Array<{ pid: number }>).map(x => x.pid)
    }
    expect(await listed()).to.deep.equal([w.proc.pid])
    w.proc.kill('SIGKILL')
    await w.exited
    const { backend } = await broker.backend()
    // registrations last 3 sweep intervals (600 ms here)
    await until(async () => (await backend.inspect(queue)).workers.length === 0, 5000, 'expiry')
    expect(await listed()).to.deep.equal([])
  })

  it('--concurrency 40 runs two lanes on Redis and says so; --lanes 1 keeps one', async () => {
    const two = start('--concurrency', '40', '--log-format', 'json')
    const line = JSON.parse(await two.line(/"event":"worker:start"/))
    expect(line).to.include({ concurrency: 40, lanes: 2 })
    const ids = await Promise.all(
      Array.from({ length: 40 }, () => broker.queue<typeof space>().w.sleep(50)),
    )
    await Promise.all(ids.map(d => d.result(10_000)))
    const workers = new Set((await Promise.all(ids.map(d => d.info()))).map(i => i?.workerId))
    expect([...workers].sort()).to.deep.equal([line.id, `${line.id}/1`])
    two.proc.kill('SIGTERM')
    expect((await two.exited).code).to.equal(0)
    const one = start('--concurrency', '40', '--lanes', '1')
    expect(await one.line(/worker:start/)).to.match(/concurrency 40, /)
  })

  it('--no-task-context runs tasks with their context as `this` alone, in the worker and in children', async () => {
    for (const extra of [[], ['--processes', '1']]) {
      const w = start('--no-task-context', ...extra)
      await w.line(/worker:start/)
      const q = broker.queue<typeof space>()
      const who = (await (await q.w.whoami()).result(10_000)) as { name: string }
      expect(who.name).to.equal('w.whoami')
      const err = await (await q.w.context()).result(10_000).catch((e: unknown) => e)
      expect(err).to.be.instanceOf(TaskFailure)
      expect((err as Error).message).to.match(/`--no-task-context`/)
      w.proc.kill('SIGTERM')
      expect((await w.exited).code).to.equal(0)
    }
  })

  it('the worker:start line and a bad URL error show the URL without its password', async () => {
    const w = worq([
      'worker',
      url.replace('redis://', 'redis://:pw-secret@'),
      '--tasks',
      TASKS,
      '--queue',
      queue,
      '--log-format',
      'json',
    ])
    const line = JSON.parse(await w.line(/"event":"worker:start"/))
    expect(line.url).to.equal(url.replace('redis://', 'redis://:***@'))
    w.proc.kill('SIGTERM')
    expect((await w.exited).code).to.equal(0)
    expect(w.lines.join('\n')).to.not.include('pw-secret')
    const bad = await worqRun([
      'worker',
      `${url}?password=pw-secret`,
      '--tasks',
      TASKS,
      '--queue',
      queue,
    ])
    expect(bad.code).to.not.equal(0)
    expect(bad.out).to.include(`${url}?password=***`).and.not.include('pw-secret')
  })
})
