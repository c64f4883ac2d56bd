/**
 * Child-process isolation on memory:// (the children never touch the backend, so one process with
 * an in-process pool proves the executor): results, context, progress and timeouts behave as in
 * process; each kind of crash fails only its own task and the child is replaced.
 */
import { expect } from 'chai'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import {
  getBroker,
  task,
  TaskFailure,
  WorkerPool,
  type Broker,
  type WorkerPoolOptions,
} from '../../lib/index.js'
import { ChildProcessExecutor, TasksModuleError } from '../../lib/worker/children/index.js'
import type { ChildExecutorEvents } from '../../lib/worker/children/index.js'
import { uniqueQueue } from '../helpers/util.js'
import type { w as space } from '../fixtures/worker-tasks.js'

const TASKS = fileURLToPath(new URL('../fixtures/worker-tasks.ts', import.meta.url))
type Exit = ChildExecutorEvents['child:exit'][0]

async function failure(p: Promise<unknown>): Promise<TaskFailure> {
  const err = await p.then(
    v => new Error(`expected a failure, got ${JSON.stringify(v)}`),
    (e: unknown) => e,
  )
  expect(err).to.be.instanceOf(TaskFailure)
  return err as TaskFailure
}

describe('worker: child processes (memory://)', function () {
  let broker: Broker
  let pool: WorkerPool
  let executor: ChildProcessExecutor
  const exits: Exit[] = []

  async function startPool(
    opts: Partial<ConstructorParameters<typeof ChildProcessExecutor>[0]> = {},
    poolOpts: WorkerPoolOptions = {},
  ) {
    exits.length = 0
    broker = getBroker('memory://', uniqueQueue('children'))
    executor = new ChildProcessExecutor({ tasks: TASKS, killGrace: 300, ...opts })
    executor.on('child:exit', e => exits.push(e))
    pool = new WorkerPool(broker, { concurrency: 1, ...poolOpts, executor })
    await pool.start()
    return broker.queue<typeof space>()
  }

  function nextExit(): Promise<Exit> {
    return new Promise(resolve => executor.once('child:exit', resolve))
  }

  afterEach(async () => {
    await pool?.stop({ timeout: 1000 })
    await broker?.close()
  })

  it('with taskContext: false, a child runs tasks whose context is `this` alone', async () => {
    const q = await startPool({ taskContext: false })
    const who = (await (await q.w.whoami()).result(5000)) as { pid: number }
    expect(who).to.deep.include({ count: 1, attempt: 1, worker: pool.id, name: 'w.whoami' })
    const err = await failure((await q.w.context()).result(5000))
    expect(err.message).to.match(
      /taskContext\(\) was called outside a running task.*`taskContext: false`/,
    )
  })

  it('runs tasks in a child with the same results, context, progress and soft timeout', async () => {
    const q = await startPool()
    expect(await (await q.w.add(2, 3)).result(5000)).to.equal(5)
    const who = (await (await q.w.whoami()).result(5000)) as { pid: number }
    expect(who).to.deep.include({ count: 1, attempt: 1, worker: pool.id, name: 'w.whoami' })
    expect(who.pid).to.equal(executor.pids[0])
    expect(who.pid).to.not.equal(process.pid)
    const d = await task(q.w.context, { attempts: 2 })()
    expect(await d.result(5000)).to.deep.equal({
      queue: broker.name,
      attempts: 2,
      aborted: false,
      taskId: d.id,
    })
    const seen: unknown[] = []
    pool.on('task:progress', e => seen.push(e.value))
    expect(await (await q.w.steps(2)).result(5000)).to.equal(2)
    expect(seen).to.deep.equal([
      { step: 1, of: 2, at: new Date(0) },
      { step: 2, of: 2, at: new Date(0) },
    ])
    const err = await failure(task(q.w.untilAborted, { timeout: 50 })().then(t => t.result(5000)))
    expect(err.remote.name).to.equal('TaskTimeout')
    // A child whose task blocked its event loop past the timeout, but answered within killGrace:
    // the late value is dropped, the task fails with TaskTimeout.
    const blocked = await failure(task(q.w.block, { timeout: 50 })(200).then(t => t.result(5000)))
    expect(blocked.remote.name).to.equal('TaskTimeout')
    const thrown = await failure((await q.w.fails('nope')).result(5000))
    expect(thrown.remote).to.deep.include({ name: 'TypeError', message: 'nope' })
    expect(exits).to.deep.equal([])
  })

  it('exposes the default export and not exported plain functions', async () => {
    const q = (await startPool()) as any
    expect(await (await q.d.hello('you')).result(5000)).to.equal('hello you')
    const err = await failure((await q.helper()).result(5000))
    expect(err.remote.name).to.equal('NoSuchTask')
    expect(executor.names).to.include.members(['w.add', 'd.hello']).and.not.include('helper')
  })

  it('a task that calls process.exit fails with WorkerCrashed; the child is replaced and the next task runs', async () => {
    const q = await startPool()
    const before = executor.pids
    const exited = nextExit()
    const err = await failure((await q.w.exit(7)).result(5000))
    expect(err.remote.name).to.equal('WorkerCrashed')
    expect(err.remote.message).to.match(/exit code 7/)
    expect(await exited).to.deep.include({ code: 7, reason: 'crashed' })
    expect(await (await q.w.add(1, 1)).result(5000)).to.equal(2)
    expect(executor.pids).to.have.length(1).and.not.deep.equal(before)
  })

  it('an asynchronous throw and an unhandled rejection each fail only their own task', async () => {
    const q = await startPool()
    const a = await failure((await q.w.throwLater('late boom')).result(5000))
    expect(a.remote.message).to.match(/uncaught exception RangeError: late boom/)
    expect((a.remote.cause as { name: string }).name).to.equal('RangeError')
    const b = await failure((await q.w.rejectLater('lost promise')).result(5000))
    expect(b.remote.message).to.match(/unhandled rejection Error: lost promise/)
    expect(await (await q.w.add(2, 2)).result(5000)).to.equal(4)
  })

  it('values that throw when read (returned, thrown, rejected, as progress) fail only their own task; the child lives on', async () => {
    const q = await startPool()
    const pid = await (await q.w.pid()).result(5000)
    const returned = await failure((await q.w.hostile('return')).result(5000))
    expect(returned.remote.name).to.equal('UnserializableResult')
    for (const how of ['throw', 'reject'] as const) {
      const thrown = await failure((await q.w.hostile(how)).result(5000))
      expect(thrown.remote, how).to.include({ name: 'NonError' })
      expect(thrown.remote.message, how).to.match(/cannot be read: trap/)
    }
    expect(await (await q.w.hostile('progress')).result(5000)).to.equal('TypeError')
    expect(await (await q.w.pid()).result(5000)).to.equal(pid)
    expect(exits).to.deep.equal([])
  })

  it('a crash with attempts left runs again in a fresh child', async () => {
    const q = await startPool()
    expect(await (await task(q.w.exitOnFirstAttempt, { attempts: 2 })()).result(5000)).to.equal(
      'attempt 2',
    )
  })

  it('a child blocked past its lease keeps the task: the parent renews the lease', async () => {
    const q = await startPool()
    const lost: unknown[] = []
    pool.on('lease:lost', e => lost.push(e))
    const d = await task(q.w.block, { heartrate: 50 })(1500) // lease: 2 × 50 + 1000 ms
    expect(await d.result(5000)).to.equal('unblocked')
    expect(lost).to.deep.equal([])
  })

  it('a child that does not answer within timeout + killGrace is killed: TaskTimeout, and the next task runs', async () => {
    const q = await startPool()
    const exited = nextExit()
    const err = await failure(task(q.w.blockForever, { timeout: 100 })().then(d => d.result(5000)))
    expect(err.remote.name).to.equal('TaskTimeout')
    expect(err.remote.message).to.match(/did not answer within 300 ms/)
    expect(await exited).to.deep.include({ signal: 'SIGKILL', reason: 'timeout' })
    expect(await (await q.w.add(3, 3)).result(5000)).to.equal(6)
  })

  it('a timed-out task that ignores its signal gets its child replaced after killGrace', async () => {
    const q = await startPool()
    const exited = nextExit()
    const err = await failure(
      task(q.w.ignoreAbort, { timeout: 50 })(60_000).then(d => d.result(5000)),
    )
    expect(err.remote.name).to.equal('TaskTimeout')
    expect(await exited).to.deep.include({ reason: 'recycled', code: 0 })
    expect(await (await q.w.add(1, 2)).result(5000)).to.equal(3)
  })

  it('maxTasksPerChild 3 with 4 tasks: two children, per-child counts 1, 2, 3, 1', async () => {
    const q = await startPool({ maxTasksPerChild: 3 })
    const runs: Array<{ pid: number; count: number }> = []
    for (let i = 0; i < 4; i++) runs.push((await (await q.w.whoami()).result(5000)) as never)
    expect(runs.map(r => r.count)).to.deep.equal([1, 2, 3, 1])
    const pids = runs.map(r => r.pid)
    expect(new Set(pids).size).to.equal(2)
    expect(pids.slice(0, 3)).to.deep.equal([pids[0], pids[0], pids[0]])
    expect(exits.map(e => [e.pid, e.reason, e.tasks])).to.deep.equal([[pids[0], 'recycled', 3]])
  })

  it('a child killed from outside fails its task with WorkerCrashed (SIGKILL)', async () => {
    const q = await startPool()
    const pid = (await (await q.w.pid()).result(5000)) as number
    const d = await q.w.sleep(60_000)
    await new Promise(resolve => pool.once('task:start', resolve))
    process.kill(pid, 'SIGKILL')
    const err = await failure(d.result(5000))
    expect(err.remote.message).to.match(/killed by SIGKILL/)
  })

  it('a child out of memory fails its task with WorkerCrashed and is replaced', async function () {
    this.timeout(45_000)
    const q = await startPool({ execArgv: [...process.execArgv, '--max-old-space-size=24'] })
    const err = await failure((await q.w.oom()).result(20_000))
    expect(err.remote.name).to.equal('WorkerCrashed')
    expect(err.remote.message).to.match(/out of memory/)
    // The replacement starts with the same 24 MB heap, loading the tasks module through tsx: on a
    // loaded machine that took over 5 s once, so it gets the OOM case's own deadline.
    expect(await (await q.w.add(5, 5)).result(20_000)).to.equal(10)
  })

  it('several processes share the work; concurrency per child', async () => {
    const q = await startPool({ processes: 2, concurrency: 2 }, { concurrency: 4 })
    expect(executor.pids).to.have.length(2)
    const ds = await Promise.all([1, 2, 3, 4].map(() => q.w.pidAfter(200)))
    const pids = (await Promise.all(ds.map(d => d.result(5000)))) as number[]
    const perChild = new Map<number, number>()
    for (const pid of pids) perChild.set(pid, (perChild.get(pid) ?? 0) + 1)
    expect([...perChild.keys()].sort()).to.deep.equal([...executor.pids].sort())
    expect([...perChild.values()]).to.deep.equal([2, 2])
  })

  /** Resolves after `n` task:start events of the pool from now. */
  function starts(n: number): Promise<void> {
    let seen = 0
    return new Promise(resolve => pool.on('task:start', () => ++seen === n && resolve()))
  }

  it('a replacement child killed as it starts is respawned: a task waiting for a child runs', async () => {
    const q = await startPool({ processes: 2 }, { concurrency: 3 })
    const running = starts(3)
    const busy = [await q.w.sleep(1500), await q.w.sleep(1500)]
    const waiting = await q.w.add(2, 3) // both children busy: it waits for one
    await running
    executor.once('child:spawn', ({ pid }) => process.kill(pid, 'SIGKILL'))
    process.kill(executor.pids[0]!, 'SIGKILL')
    expect(await waiting.result(10_000)).to.equal(5)
    const crashed = await Promise.allSettled(busy.map(d => d.result(5000)))
    expect(crashed.map(r => r.status).sort()).to.deep.equal(['fulfilled', 'rejected'])
    expect(exits.map(e => [e.reason, e.signal])).to.deep.equal([
      ['crashed', 'SIGKILL'],
      ['crashed', 'SIGKILL'],
    ])
  })

  describe('a tasks module that breaks after the start', () => {
    const dir = mkdtempSync(join(tmpdir(), 'worq-tasks-'))
    const module = join(dir, 'tasks.mjs')
    const good = `export * from ${JSON.stringify(pathToFileURL(TASKS).href)}\n`
    beforeEach(() => writeFileSync(module, good))
    after(() => rmSync(dir, { recursive: true, force: true }))

    it('a respawn that fails to load is load-failed with its error; tasks wait for the healthy child', async () => {
      const q = await startPool({ tasks: module, processes: 2 }, { concurrency: 3 })
      const running = starts(3)
      const busy = [await q.w.sleep(1000), await q.w.sleep(1000)]
      const waiting = await q.w.add(2, 3)
      await running
      writeFileSync(module, "throw new Error('broken on purpose')\n")
      const loadFailed = new Promise<Exit>(resolve =>
        executor.on('child:exit', e => e.reason === 'load-failed' && resolve(e)),
      )
      process.kill(executor.pids[0]!, 'SIGKILL')
      const exit = await loadFailed
      expect(exit.error?.message).to.match(/broken on purpose/)
      expect(await waiting.result(10_000)).to.equal(5)
      await Promise.allSettled(busy.map(d => d.result(5000)))
    })

    it('children that keep dying as they start fail the tasks waiting for one, after three in a row', async () => {
      const q = await startPool({ tasks: module }, { concurrency: 2 })
      const running = starts(2)
      const busy = await q.w.sleep(60_000)
      const waiting = await q.w.add(2, 3)
      await running
      writeFileSync(module, 'process.exit(3)\n')
      process.kill(executor.pids[0]!, 'SIGKILL')
      const err = await failure(waiting.result(20_000))
      expect(err.remote.name).to.equal('WorkerCrashed')
      expect(err.remote.message).to.match(/3 times in a row before they were ready.*exit code 3/)
      expect((await failure(busy.result(1000))).remote.message).to.match(/SIGKILL/)
      expect(exits.slice(0, 4).map(e => [e.reason, e.code])).to.deep.equal([
        ['crashed', null],
        ['crashed', 3],
        ['crashed', 3],
        ['crashed', 3],
      ])
    })
  })

  it('a child killed as the pool first starts is replaced: start() resolves with every child', async () => {
    exits.length = 0
    broker = getBroker('memory://', uniqueQueue('children'))
    executor = new ChildProcessExecutor({ tasks: TASKS, processes: 2 })
    executor.on('child:exit', e => exits.push(e))
    executor.once('child:spawn', ({ pid }) => process.kill(pid, 'SIGKILL'))
    pool = new WorkerPool(broker, { concurrency: 2, executor })
    await pool.start()
    expect(exits.map(e => [e.reason, e.signal])).to.deep.equal([['crashed', 'SIGKILL']])
    expect(executor.pids).to.have.length(2)
    const q = broker.queue<typeof space>()
    expect(await (await q.w.add(2, 3)).result(5000)).to.equal(5)
  })

  it('a tasks module that exits as it loads fails pool.start after three children in a row', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'worq-tasks-'))
    try {
      const module = join(dir, 'tasks.mjs')
      writeFileSync(module, 'process.exit(3)\n')
      broker = getBroker('memory://', uniqueQueue('children'))
      const bad = new WorkerPool(broker, { processes: 1, tasks: module })
      const err = await bad.start().catch((e: unknown) => e)
      expect(err).to.be.instanceOf(TasksModuleError)
      expect((err as Error).message).to.match(
        /3 times in a row before they were ready.*exit code 3/,
      )
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it('a tasks module that cannot load fails pool.start with ERR_WORQ_TASKS_MODULE', async () => {
    broker = getBroker('memory://', uniqueQueue('children'))
    const bad = new WorkerPool(broker, { processes: 1, tasks: './test/fixtures/no-such-file.ts' })
    const err = await bad.start().catch((e: unknown) => e)
    expect(err).to.be.instanceOf(TasksModuleError)
    expect((err as TasksModuleError).code).to.equal('ERR_WORQ_TASKS_MODULE')
    expect((err as Error).message).to.match(/no-such-file/)
    // Said once, not once by the child and again by the executor.
    expect((err as Error).message.match(/cannot load the tasks module/g)).to.have.length(1)
  })

  it('WorkerPool options processes + tasks + maxTasksPerChild build the executor', async () => {
    broker = getBroker('memory://', uniqueQueue('children'))
    pool = new WorkerPool(broker, { processes: 1, tasks: TASKS, maxTasksPerChild: 1 })
    await pool.start()
    const q = broker.queue<typeof space>()
    const a = (await (await q.w.whoami()).result(5000)) as { pid: number }
    const b = (await (await q.w.whoami()).result(5000)) as { pid: number }
    expect(a.pid).to.not.equal(b.pid)
    expect(() => new WorkerPool(broker, { processes: 2 })).to.throw(TypeError, /`tasks`/)
  })
})
