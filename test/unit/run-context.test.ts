import { expect } from 'chai'
import type { ReservedTask } from '../../lib/backends/backend.js'
import { encodeCall } from '../../lib/serializer.js'
import { LazyAbort } from '../../lib/worker/abort.js'
import type { TaskContext } from '../../lib/worker/context.js'
import { execute } from '../../lib/worker/execute.js'
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
    execute(reserved('t1', '{"team":"a"}'), 'q', () => probe as never, env)
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
})
