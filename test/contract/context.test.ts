import { expect } from 'chai'
import {
  getBroker,
  task,
  taskContext,
  TaskFailure,
  TaskSpace,
  WorkerPool,
  type TaskContext,
} from '../../lib/index.js'
import { backends } from '../helpers/backends.js'
import { uniqueQueue, withWorker } from '../helpers/util.js'

for (const backend of backends) {
  describe(`contract: task context and timeout [${backend.name}]`, () => {
    let url: string
    before(async () => {
      url = await backend.url()
    })

    it('a pool with taskContext: false gives the context as `this` alone; taskContext() says why it throws', async () => {
      const space = new TaskSpace('off', {
        viaThis(this: TaskContext) {
          this.progress(0.5)
          return { id: this.taskId, team: this.metadata.team, aborted: this.signal.aborted }
        },
        viaArrow: async () => {
          await Promise.resolve()
          return taskContext().taskId
        },
      })
      const w = await withWorker(url, b => b.expose(space), { taskContext: false })
      try {
        const q = w.broker.queue<typeof space>()
        const a = await task(q.off.viaThis, { metadata: { team: 'a' } })()
        expect(await a.result(5000)).to.deep.equal({ id: a.id, team: 'a', aborted: false })
        const err = await (await q.off.viaArrow()).result(5000).catch((e: unknown) => e)
        expect(err).to.be.instanceOf(TaskFailure)
        expect((err as Error).message).to.match(/outside a running task.*`taskContext: false`/)
        expect(() => new WorkerPool(w.broker, { taskContext: 'no' as never })).to.throw(
          TypeError,
          /`taskContext` to be true or false/,
        )
      } finally {
        await w.close()
      }
    })

    it('a task sees its context as `this`, and through taskContext() in arrow functions', async () => {
      const space = new TaskSpace('ctx', {
        viaThis(this: TaskContext, x: number) {
          return {
            x,
            id: this.taskId,
            name: this.name,
            attempt: this.attempt,
            worker: this.workerId,
          }
        },
        viaArrow: async () => {
          await Promise.resolve()
          const c = taskContext()
          return { queue: c.queue, attempts: c.attempts, aborted: c.signal.aborted }
        },
      })
      const w = await withWorker(url, b => b.expose(space))
      try {
        const q = w.broker.queue<typeof space>()
        const a = await q.ctx.viaThis(7)
        expect(await a.result(5000)).to.deep.equal({
          x: 7,
          id: a.id,
          name: 'ctx.viaThis',
          attempt: 1,
          worker: w.pool.id,
        })
        const b = await task(q.ctx.viaArrow, { attempts: 3 })()
        expect(await b.result(5000)).to.deep.equal({
          queue: w.broker.name,
          attempts: 3,
          aborted: false,
        })
        expect(() => taskContext()).to.throw(/outside a running task/)
      } finally {
        await w.close()
      }
    })

    it('past its timeout a run fails with TaskTimeout and its signal aborts; the worker goes on', async () => {
      let sawAbort: unknown
      const w = await withWorker(url, b =>
        b
          .expose(function slow(this: TaskContext) {
            return new Promise(resolve => {
              this.signal.addEventListener('abort', () => {
                sawAbort = this.signal.reason
                resolve('too late')
              })
            })
          })
          .expose(function quick() {
            return 'ok'
          }),
      )
      try {
        const q = w.broker.queue()
        const d = await task(q.slow, { timeout: 30 })()
        const err = await d.result(5000).catch((e: unknown) => e)
        expect(err).to.be.instanceOf(TaskFailure)
        expect((err as TaskFailure).remote.name).to.equal('TaskTimeout')
        expect((err as Error).message).to.match(/took longer than its timeout of 30 ms/)
        expect((sawAbort as Error).name).to.equal('TaskTimeout')
        expect(await (await q.quick()).result(5000)).to.equal('ok')
      } finally {
        await w.close()
      }
    })

    it('a run that holds the event loop past its timeout fails with TaskTimeout when it returns', async () => {
      const w = await withWorker(url, b =>
        b.expose(function block(ms: number) {
          const until = Date.now() + ms
          while (Date.now() < until) {
            // a synchronous loop: no timer can fire until it returns
          }
          return 'unblocked'
        }),
      )
      try {
        const q = w.broker.queue()
        const late = await task(q.block, { timeout: 50 })(200)
        const err = await late.result(5000).catch((e: unknown) => e)
        expect(err).to.be.instanceOf(TaskFailure)
        expect((err as TaskFailure).remote.name).to.equal('TaskTimeout')
        // Within its timeout, the same function completes.
        expect(await (await task(q.block, { timeout: 5_000 })(1)).result(5000)).to.equal(
          'unblocked',
        )
      } finally {
        await w.close()
      }
    })

    it('progress reports reach the pool as task:progress events', async () => {
      const w = await withWorker(url, b =>
        b.expose(function steps(this: TaskContext, n: number) {
          for (let i = 1; i <= n; i++) this.progress(i / n)
          return n
        }),
      )
      try {
        const seen: unknown[] = []
        w.pool.on('task:progress', e => seen.push(e.value))
        expect(await (await w.broker.queue().steps(4)).result(5000)).to.equal(4)
        expect(seen).to.deep.equal([0.25, 0.5, 0.75, 1])
      } finally {
        await w.close()
      }
    })

    it('a result over maxPayloadBytes fails its task as PayloadTooLarge, naming the task', async () => {
      const broker = getBroker(url, uniqueQueue(), { maxPayloadBytes: 4096 })
      const space = new TaskSpace('out', { big: (n: number) => 'x'.repeat(n) })
      broker.expose(space)
      const pool = new WorkerPool(broker, { concurrency: 2 })
      await pool.start()
      try {
        const q = broker.queue<typeof space>()
        const d = await task(q.out.big, { attempts: 2 })(10_000)
        const err = await d.result(5000).catch((e: unknown) => e)
        expect(err).to.be.instanceOf(TaskFailure)
        const failure = err as TaskFailure
        expect(failure.remote.name).to.equal('PayloadTooLarge')
        expect(failure.message).to.match(/over the limit of 4096 bytes/)
        expect(failure).to.include({ taskName: 'out.big', taskId: d.id, attempts: 1 })
        expect(await (await q.out.big(10)).result(5000)).to.equal('x'.repeat(10))
      } finally {
        await pool.stop({ timeout: 2000 })
        await broker.purge().catch(() => undefined)
        await broker.close()
      }
    })
  })
}
