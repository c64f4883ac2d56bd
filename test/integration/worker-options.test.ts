/**
 * A pool's options and stop()'s: what is refused (a TypeError that names the option), and
 * durations past Node's timer limit (2^31 − 1 ms, past which a timer fires after 1 ms), on
 * memory://.
 */
import { expect } from 'chai'
import { MAX_TIMER_MS } from '../../lib/backends/backend.js'
import { getBroker, TaskExpired, WorkerPool, type TaskContext } from '../../lib/index.js'
import { ChildProcessExecutor } from '../../lib/worker/children/index.js'
import { MAX_CONCURRENCY, MAX_PROCESSES } from '../../lib/worker/maxima.js'
import { newTask } from '../helpers/new-task.js'
import { latch, uniqueQueue } from '../helpers/util.js'

const TASKS = './test/fixtures/worker-tasks.ts'
/** Not a number of ms a timer can wait. */
const BAD_DURATIONS: unknown[] = [Infinity, 3e9, MAX_TIMER_MS + 1, '1000', NaN, -1, null]

describe('worker: pool options and durations (memory://)', function () {
  it('sweepInterval, blockTimeout, heartrate and killGrace past the timer limit, or not numbers, are a TypeError that names them', async () => {
    const broker = getBroker('memory://', uniqueQueue('opts'))
    try {
      for (const name of ['sweepInterval', 'blockTimeout', 'heartrate']) {
        for (const v of [...BAD_DURATIONS, 5])
          expect(
            () => new WorkerPool(broker, { [name]: v as number }),
            `${name}: ${String(v)}`,
          ).to.throw(TypeError, new RegExp(`\`${name}\` to be a number from 10 to ${MAX_TIMER_MS}`))
        expect(() => new WorkerPool(broker, { [name]: MAX_TIMER_MS })).to.not.throw()
      }
      for (const v of BAD_DURATIONS) {
        const killGrace = v as number
        expect(
          () => new WorkerPool(broker, { processes: 1, tasks: TASKS, killGrace }),
          `killGrace: ${String(v)}`,
        ).to.throw(TypeError, /`killGrace` to be a number from 0 to 2147483647/)
        expect(() => new ChildProcessExecutor({ tasks: TASKS, killGrace })).to.throw(
          TypeError,
          /`killGrace`/,
        )
      }
      expect(() => new ChildProcessExecutor({ tasks: TASKS, startTimeout: 3e9 })).to.throw(
        TypeError,
        /`startTimeout`/,
      )
    } finally {
      await broker.close()
    }
  })

  it('processes and maxTasksPerChild that are not integers from 1 are a TypeError that names them', async () => {
    const broker = getBroker('memory://', uniqueQueue('opts'))
    try {
      for (const processes of [0, -1, 1.5, NaN, '2'])
        expect(
          () => new WorkerPool(broker, { processes: processes as number, tasks: TASKS }),
          String(processes),
        ).to.throw(TypeError, /^Expected `processes` to be an integer from 1 to 256/)
      for (const maxTasksPerChild of [0, -1, 1.5, NaN, '10'])
        expect(
          () =>
            new WorkerPool(broker, {
              processes: 1,
              tasks: TASKS,
              maxTasksPerChild: maxTasksPerChild as number,
            }),
          String(maxTasksPerChild),
        ).to.throw(TypeError, /`maxTasksPerChild` to be an integer from 1 to \d+, or Infinity/)
      const unlimited = { processes: 1, tasks: TASKS, maxTasksPerChild: Infinity }
      expect(() => new WorkerPool(broker, unlimited)).to.not.throw()
    } finally {
      await broker.close()
    }
  })

  it('concurrency and processes had no maxima (the CLI refused past 10 000 and 256): a TypeError naming the option and its limit', async () => {
    const broker = getBroker('memory://', uniqueQueue('opts'))
    try {
      for (const concurrency of [10_001, 1e6, 2 ** 53])
        expect(() => new WorkerPool(broker, { concurrency }), String(concurrency)).to.throw(
          TypeError,
          /^Expected `concurrency` to be an integer from 1 to 10000, got \d+/,
        )
      for (const processes of [257, 100_000])
        expect(
          () => new WorkerPool(broker, { processes, tasks: TASKS, concurrency: processes }),
          String(processes),
        ).to.throw(TypeError, /^Expected `processes` to be an integer from 1 to 256, got \d+/)
      // Without concurrency, processes sets it: the processes' limit is the one named.
      expect(() => new WorkerPool(broker, { processes: 300, tasks: TASKS })).to.throw(
        TypeError,
        /`processes` to be an integer from 1 to 256/,
      )
      expect(() => new ChildProcessExecutor({ tasks: TASKS, processes: 257 })).to.throw(
        TypeError,
        /^Expected `processes` to be an integer from 1 to 256, got 257/,
      )
      // The maxima themselves are taken (no child starts before start()).
      expect(() => new WorkerPool(broker, { concurrency: 10_000 })).to.not.throw()
      expect(() => new WorkerPool(broker, { processes: 256, tasks: TASKS })).to.not.throw()
      expect(MAX_CONCURRENCY).to.equal(10_000)
      expect(MAX_PROCESSES).to.equal(256)
    } finally {
      await broker.close()
    }
  })

  it('maxTasksPerChild past 2^53 − 1 (where counting runs stops being exact) was taken: a TypeError, Infinity still means never', async () => {
    const broker = getBroker('memory://', uniqueQueue('opts'))
    try {
      for (const maxTasksPerChild of [2 ** 53, 1e300]) {
        const options = { processes: 1, tasks: TASKS, maxTasksPerChild }
        expect(() => new WorkerPool(broker, options), String(maxTasksPerChild)).to.throw(
          TypeError,
          /^Expected `maxTasksPerChild` to be an integer from 1 to 9007199254740991, or Infinity/,
        )
        expect(() => new ChildProcessExecutor(options)).to.throw(TypeError, /`maxTasksPerChild`/)
      }
      const options = { processes: 1, tasks: TASKS, maxTasksPerChild: Number.MAX_SAFE_INTEGER }
      expect(() => new WorkerPool(broker, options)).to.not.throw()
    } finally {
      await broker.close()
    }
  })

  it('stop() with a timeout that is not 0 to 2^31 − 1 ms or Infinity rejects with a TypeError and changes nothing', async () => {
    const broker = getBroker('memory://', uniqueQueue('opts'))
    const started = latch()
    const release = latch()
    broker.expose(async function slow() {
      started.resolve()
      await release.promise
      return 'done'
    })
    const pool = new WorkerPool(broker)
    try {
      await pool.start()
      const d = await broker.queue().slow()
      await started.promise
      for (const timeout of [-5, 'x', NaN, 3e9, MAX_TIMER_MS + 1, null]) {
        const err = await pool.stop({ timeout: timeout as number }).catch((e: unknown) => e)
        expect(err, String(timeout)).to.be.instanceOf(TypeError)
        expect((err as Error).message).to.match(
          /`timeout` to be a number from 0 to 2147483647.*Infinity/,
        )
      }
      // Still running: the task was not handed back, and the pool goes on.
      expect(pool.running).to.equal(1)
      release.resolve()
      expect(await d.result(5000)).to.equal('done')
      expect(await (await broker.queue().slow()).result(5000)).to.equal('done')
    } finally {
      await pool.stop()
      await broker.close()
    }
  })

  it('stop({ timeout: Infinity }) waits for running tasks however long they take; a later stop({ timeout: 0 }) hands them back', async () => {
    const broker = getBroker('memory://', uniqueQueue('opts'))
    let starts = 0
    const bothStarted = latch()
    broker.expose(async function nap(ms: number) {
      if (++starts === 2) bothStarted.resolve()
      await new Promise(r => setTimeout(r, ms)) // its length is under test
      return ms
    })
    broker.expose(function hang() {
      if (++starts === 2) bothStarted.resolve()
      return new Promise(() => undefined)
    })
    const pool = new WorkerPool(broker, { concurrency: 2 })
    try {
      await pool.start()
      const q = broker.queue()
      const napping = await q.nap(300)
      const hanging = await q.hang()
      await bothStarted.promise
      let stopped = false
      const stopping = pool.stop({ timeout: Infinity }).then(() => (stopped = true))
      expect(await napping.result(5000)).to.equal(300)
      expect(stopped, 'stopped while a task still ran').to.equal(false)
      await pool.stop({ timeout: 0 })
      await stopping
      expect(await hanging.result(5000).catch((e: unknown) => e)).to.be.instanceOf(TaskExpired)
    } finally {
      await broker.close()
    }
  })

  it('a task stored with a heartrate and timeout past the timer limit (by an earlier worq) runs at its pace: no renewal every ms, no instant timeout', async () => {
    const queue = uniqueQueue('opts')
    const broker = getBroker('memory://', queue)
    broker.expose(async function func(this: TaskContext) {
      await new Promise(r => setTimeout(r, 100)) // a run long enough for a storm of timers to show
      return this.attempt
    })
    const warnings: Error[] = []
    const onWarning = (w: Error) => warnings.push(w)
    process.on('warning', onWarning)
    const pool = new WorkerPool(broker)
    try {
      const { backend } = await broker.backend()
      await pool.start()
      const ended = new Promise<{ status: string }>(resolve => pool.once('task:end', resolve))
      const task = newTask(`long-${queue}`, {
        payload: '{"json":[]}',
        heartrate: 3e9,
        timeout: 3e9,
      })
      expect(await backend.enqueue(queue, [task])).to.deep.equal(['ok'])
      expect(await ended).to.include({ status: 'completed' })
      expect(warnings.map(w => w.name)).to.not.include('TimeoutOverflowWarning')
    } finally {
      process.off('warning', onWarning)
      await pool.stop()
      await broker.close()
    }
  })
})
