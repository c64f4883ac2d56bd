/**
 * Stopping a pool at awkward moments (memory://): while it starts, and after its broker was closed
 * under it; in process and with child processes, whose children must not outlive the stop.
 */
import { expect } from 'chai'
import { fileURLToPath } from 'node:url'
import { getBroker, WorkerPool } from '../../lib/index.js'
import { ChildProcessExecutor } from '../../lib/worker/children/index.js'
import type { ChildExecutorEvents } from '../../lib/worker/children/index.js'
import { latch, uniqueQueue } from '../helpers/util.js'
import { w } from '../fixtures/worker-tasks.js'

const TASKS = fileURLToPath(new URL('../fixtures/worker-tasks.ts', import.meta.url))
type Exit = ChildExecutorEvents['child:exit'][0]

describe('worker: stopping a pool while it starts, or after its broker closed (memory://)', function () {
  for (const processes of [undefined, 2]) {
    const where = processes ? `with ${processes} child processes` : 'in process'
    it(`stop() while start() runs stops the pool once started, takes no task, and is idempotent (${where})`, async () => {
      const broker = getBroker('memory://', uniqueQueue('stop'))
      broker.expose(w)
      const executor = processes ? new ChildProcessExecutor({ tasks: TASKS, processes }) : undefined
      const exits: Exit[] = []
      executor?.on('child:exit', e => exits.push(e))
      const pool = new WorkerPool(broker, { sweepInterval: 20, ...(executor && { executor }) })
      const starts: string[] = []
      pool.on('task:start', e => starts.push(e.id))
      try {
        const d = await broker.queue<typeof w>().w.add(1, 2)
        const starting = pool.start()
        const stops = [pool.stop(), pool.stop({ timeout: 0 })]
        await starting
        await Promise.all(stops)
        await pool.stop()
        expect(pool.lanes).to.have.length(1)
        expect(starts).to.deep.equal([])
        expect(await d.status()).to.equal('enqueued')
        expect((await broker.inspect()).workers).to.deep.equal([])
        if (executor) {
          expect(executor.pids).to.deep.equal([])
          expect(exits.map(e => e.reason)).to.deep.equal(['stopped', 'stopped'])
        }
        // A new pool takes the task.
        const next = new WorkerPool(broker, { ...(processes && { processes, tasks: TASKS }) })
        await next.start()
        expect(await d.result(5000)).to.equal(3)
        await next.stop()
      } finally {
        await pool.stop({ timeout: 0 })
        await broker.close()
      }
    })
  }

  for (const stop of [true, false]) {
    const what = stop ? 'stop() resolves once they ended' : 'they end without a stop()'
    it(`a broker closed under a pool with child processes: pool:error BrokerClosed, and ${what}`, async () => {
      const broker = getBroker('memory://', uniqueQueue('stop'))
      const executor = new ChildProcessExecutor({ tasks: TASKS, processes: 2 })
      const exits: Exit[] = []
      const bothExited = latch()
      executor.on('child:exit', e => exits.push(e) === 2 && bothExited.resolve())
      const pool = new WorkerPool(broker, { executor })
      const closed = new Promise<Error>(resolve => pool.on('pool:error', resolve))
      try {
        await pool.start()
        expect(executor.pids).to.have.length(2)
        await broker.close()
        expect(await closed).to.have.property('code', 'ERR_WORQ_CLOSED')
        if (stop) await pool.stop()
        else await bothExited.promise
        expect(executor.pids).to.deep.equal([])
        expect(exits.map(e => e.reason)).to.deep.equal(['stopped', 'stopped'])
      } finally {
        await pool.stop() // resolves, again
        await executor.close()
      }
    })
  }

  it('stop() while a start that fails runs resolves, and the pool is stopped', async () => {
    const broker = getBroker('memory://', uniqueQueue('stop'))
    const pool = new WorkerPool(broker, { processes: 1, tasks: './test/fixtures/no-such-file.ts' })
    const failed = pool.start().catch((e: unknown) => e)
    await pool.stop()
    expect(await failed).to.have.property('code', 'ERR_WORQ_TASKS_MODULE')
    await pool.stop()
    expect(await pool.start().catch((e: unknown) => e))
      .to.be.instanceOf(Error)
      .with.property('message')
      .that.matches(/stopped/)
    await broker.close()
  })
})
