import { expect } from 'chai'
import type { ReservedTask } from '../../lib/backends/backend.js'
import { encodeCall } from '../../lib/serializer.js'
import { LazyAbort } from '../../lib/worker/abort.js'
import { taskContext, type TaskContext } from '../../lib/worker/context.js'
import { execute, makeRunner } from '../../lib/worker/execute.js'
import { newTask } from '../helpers/new-task.js'

function reserved(id: string, metadata = ''): ReservedTask {
  const payload = encodeCall([1]).payload
  return { ...newTask(id, { payload, metadata }), token: 'k', attempt: 1, slots: [], dueAt: 0 }
}

describe('run context', () => {
  // A context made per run as an object literal with getters closing over the run kept each run's
  // objects alive through young-generation collections: a worker's scavenges promoted about
  // 450 KB each and paused about 3 ms (bench, latency-steady). Its accessors live on a shared
  // prototype instead; this keeps them there.
  it('has no accessor of its own, and reads signal and metadata through its class', () => {
    let seen: TaskContext | undefined
    function probe(this: TaskContext): number {
      seen = this // eslint-disable-line @typescript-eslint/no-this-alias -- the context under test
      return 1
    }
    const controller = new LazyAbort()
    const env = { workerId: 'w', controller, progress: () => undefined }
    execute(
      reserved('t1', '{"team":"a"}'),
      'q',
      { lookup: () => probe as never, context: true },
      env,
    )
    const ctx = seen!
    const accessors = Object.entries(Object.getOwnPropertyDescriptors(ctx))
      .filter(([, d]) => d.get !== undefined || d.set !== undefined)
      .map(([key]) => key)
    expect(accessors).to.deep.equal([])
    expect(ctx.metadata).to.deep.equal({ team: 'a' })
    expect(Object.isFrozen(ctx.metadata)).to.equal(true)
    expect(ctx.signal).to.equal(controller.signal)
    expect(ctx).to.include({ workerId: 'w', taskId: 't1', queue: 'q', attempt: 1, attempts: 1 })
    const { progress } = ctx
    expect(() => progress(0.5)).not.to.throw()
  })

  it('runs in its async context, which taskContext() reads after an await; without it (taskContext: false) the context is `this` alone', async () => {
    const env = { workerId: 'w', controller: new LazyAbort(), progress: () => undefined }
    async function later(this: TaskContext): Promise<string[]> {
      const before = taskContext().taskId
      await new Promise(r => setTimeout(r, 1))
      return [before, taskContext().taskId, this.taskId]
    }
    const tracked = await execute(
      reserved('t2'),
      'q',
      { lookup: () => later as never, context: true },
      env,
    )
    expect(tracked.outcome).to.equal('c{"json":["t2","t2","t2"]}')
    function plain(this: TaskContext): string {
      let thrown = ''
      try {
        taskContext()
      } catch (err) {
        thrown = (err as Error).message
      }
      return `${this.taskId} ${thrown}`
    }
    const untracked = await execute(
      reserved('t3'),
      'q',
      makeRunner(() => plain as never, false),
      env,
    )
    expect(untracked.outcome).to.match(
      /^c\{"json":"t3 taskContext\(\) was called outside a running task.*`taskContext: false` or `--no-task-context`/,
    )
  })
})
