import { expect } from 'chai'
import { makeQueue, type QueueHost } from '../../lib/queue.js'
import { TaskSpace } from '../../lib/taskspace.js'
import type { TaskOptions } from '../../lib/types.js'

/** A host that records the calls the Proxy makes. */
function recorder() {
  const calls: Array<[string, unknown[], TaskOptions]> = []
  const host: QueueHost = {
    enqueue(path, args, defaults) {
      calls.push([path, args, defaults])
      return Promise.resolve(undefined)
    },
    close: () => Promise.resolve(),
  }
  return { host, calls }
}

describe('queue: the Proxy', () => {
  it('keeps the Proxy of each name, so a call in a loop builds none', async () => {
    const { host, calls } = recorder()
    const defaults = { attempts: 2 }
    const q = makeQueue(host, '', defaults) as any
    expect(q.math).to.equal(q.math)
    expect(q.math.add).to.equal(q.math.add)
    for (let i = 0; i < 3; i++) await q.math.add(i, 1)
    expect(calls).to.deep.equal([
      ['math.add', [0, 1], defaults],
      ['math.add', [1, 1], defaults],
      ['math.add', [2, 1], defaults],
    ])
  })

  it('past 1 000 names, names are still routed, their Proxies built afresh and not kept', async () => {
    const { host, calls } = recorder()
    const q = makeQueue(host, '', {}) as any
    for (let i = 0; i < 1000; i++) expect(q[`n${i}`]).to.equal(q[`n${i}`])
    expect(q.late).to.not.equal(q.late)
    expect(q.n999).to.equal(q.n999)
    await q.late.fn('x')
    expect(calls).to.deep.equal([['late.fn', ['x'], {}]])
  })

  it('is not a thenable, and the root is not a task', () => {
    const { host } = recorder()
    const q = makeQueue(host, '', {}) as any
    expect(q.then).to.equal(undefined)
    expect(() => q()).to.throw(TypeError, /the queue itself is not a task/)
  })

  it('turned into a string, a number or JSON, it calls nothing', () => {
    const { host, calls } = recorder()
    const q = makeQueue(host, '', {}) as any
    expect(`${q.math}`).to.equal('[worq queue math]')
    expect(String(q)).to.equal('[worq queue (root)]')
    expect(Number.isNaN(+q.math)).to.equal(true)
    expect(q.math == 'x').to.equal(false)
    expect(JSON.stringify({ queue: q.math })).to.equal('{}')
    expect(calls).to.deep.equal([])
  })

  it('a name no worker could expose is a TypeError at the call, and nothing is enqueued', async () => {
    const { host, calls } = recorder()
    const q = makeQueue(host, '', {}) as any
    for (const call of [
      () => q['a b'](),
      () => q[0](),
      () => q.math[''](),
      () => q['w\nf'](),
      () => q['x'.repeat(5000)](),
      () => q['w\u0000x'](),
    ])
      expect(call).to.throw(TypeError, /task name/)
    expect(calls).to.deep.equal([])
    await q.math.add(1, 2)
    expect(calls.map(c => c[0])).to.deep.equal(['math.add'])
  })

  it('then and toJSON are no task or namespace names: TaskSpace refuses them', () => {
    for (const [space, name] of [
      ['jobs', 'then'],
      ['then', 'x'],
      ['a.toJSON', 'x'],
      ['jobs', 'toJSON'],
    ])
      expect(() => new TaskSpace(space!, { [name!]: () => 1 }), `${space}.${name}`).to.throw(
        TypeError,
        /"then" or "toJSON"/,
      )
    expect(new TaskSpace('jobs', { thenable: () => 1, toString: () => 1 }).tasks.size).to.equal(2)
  })
})
