import { expect } from 'chai'
import type { NewTask, ReservedTask } from '../../lib/backends/backend.js'
import { RedisBackend } from '../../lib/backends/redis/redis.js'
import { queueKey } from '../../lib/backends/redis/keys.js'
import { useRedisAdmin } from '../helpers/redis-server.js'
import { uniqueQueue } from '../helpers/util.js'
import { newTask as baseTask } from '../helpers/new-task.js'
import { expectReleased } from '../helpers/released.js'

/** Tasks of these tests: 3 attempts. */
const newTask = (id: string, extra: Partial<NewTask> = {}) =>
  baseTask(id, { attempts: 3, ...extra })

/** Lease = 2 × heartrate 10 + 1000 ms: time is under test. */
const lapse = () => new Promise(r => setTimeout(r, 1050))

/** Finishes `tasks` for worker `w`, each with the outcome `c<id>`. */
const completeAll = (b: RedisBackend, queue: string, tasks: readonly ReservedTask[]) =>
  b.exchange(
    queue,
    'w',
    tasks.map(t => ({ ...t, outcome: `c${t.id}` })),
    0,
  )

describe('redis: handover to parked workers', () => {
  const ctx = useRedisAdmin()
  const open = () => new RedisBackend(ctx.url, { maxPayloadBytes: 1 << 20 })

  it('an enqueue reserves for a parked worker, its wait returns the reservation, and the park serves handovers until its slots are used up', async () => {
    const queue = uniqueQueue('hand')
    const b = open()
    try {
      const first = await b.exchange(queue, 'w', [], 2, { ms: 5000, slots: 2 })
      expect(first.reserved).to.deep.equal([])
      // "t": this worker reads handovers as text.
      expect(await ctx.admin.hget(queueKey(queue, 'parked'), 'w')).to.match(/^t2\|\d+\|w:.*p$/)
      await b.enqueue(queue, [newTask('a')])
      // As text: the record copied as it is, not escaped into JSON.
      const [message] = await ctx.admin.lrange(queueKey(queue, 'h:w'), 0, -1)
      expect(message!.startsWith('\x1e\x1fa\x1f')).to.equal(true)
      expect(message).to.not.include('\\"')
      // Reserved by the enqueue: nothing waits in line, the task is processing.
      expect(await ctx.admin.llen(queueKey(queue, 'wait'))).to.equal(0)
      expect(await b.status(queue, 'a')).to.deep.equal({ status: 'processing' })
      // One slot of the park is left, for a handover under a nonce of its own.
      expect(await ctx.admin.hget(queueKey(queue, 'parked'), 'w')).to.match(/^t1\|\d+\|w:.*p1$/)
      const handed = await b.waitForWork(queue, 'w', 5000)
      expect(handed.map(t => [t.id, t.attempt, t.name])).to.deep.equal([['a', 1, 'func']])
      await b.enqueue(queue, [newTask('b')])
      expect(await b.status(queue, 'b')).to.deep.equal({ status: 'processing' })
      // The park is used up: the next task waits in line for the worker's next exchange.
      expect(await ctx.admin.hexists(queueKey(queue, 'parked'), 'w')).to.equal(0)
      const second = await b.waitForWork(queue, 'w', 5000)
      expect(second.map(t => t.id)).to.deep.equal(['b'])
      expect(second[0]!.token).to.not.equal(handed[0]!.token)
      await b.enqueue(queue, [newTask('c')])
      expect(await b.status(queue, 'c')).to.deep.equal({ status: 'enqueued' })
      const next = (await b.exchange(queue, 'w', [], 1)).reserved
      expect(next.map(t => t.id)).to.deep.equal(['c'])
      const done = await b.exchange(
        queue,
        'w',
        [
          { ...handed[0]!, outcome: 'c1' },
          { ...second[0]!, outcome: 'c2' },
          { ...next[0]!, outcome: 'c3' },
        ],
        0,
      )
      expect(done.stale).to.deep.equal([])
      expect(await b.status(queue, 'a')).to.deep.equal({ status: 'completed', outcome: 'c1' })
      expect(await b.status(queue, 'b')).to.deep.equal({ status: 'completed', outcome: 'c2' })
      expect(await b.status(queue, 'c')).to.deep.equal({ status: 'completed', outcome: 'c3' })
    } finally {
      await b.unregisterWorker(queue, 'w')
      await b.close()
    }
  })

  it('hands over no more than the slots the worker parked with; the rest waits and wakes others', async () => {
    const queue = uniqueQueue('hand')
    const b = open()
    const other = open()
    try {
      await b.exchange(queue, 'w', [], 1, { ms: 5000, slots: 1 })
      await b.enqueue(queue, [newTask('a'), newTask('b'), newTask('c')])
      const handed = await b.waitForWork(queue, 'w', 5000)
      expect(handed.map(t => t.id)).to.deep.equal(['a'])
      expect(await ctx.admin.llen(queueKey(queue, 'wait'))).to.equal(2)
      // A worker that did not park is woken by the marker and reserves the rest in line.
      expect(await other.waitForWork(queue, 'o', 5000)).to.deep.equal([])
      const rest = await other.exchange(queue, 'o', [], 5)
      expect(rest.reserved.map(t => t.id)).to.deep.equal(['b', 'c'])
    } finally {
      await b.unregisterWorker(queue, 'w')
      await other.unregisterWorker(queue, 'o')
      await Promise.all([b.close(), other.close()])
    }
  })

  it('a park past its time gets nothing: the task waits in line', async () => {
    const queue = uniqueQueue('hand')
    const b = open()
    try {
      await b.exchange(queue, 'w', [], 1, { ms: 1, slots: 1 })
      const [till] = (await ctx.admin.hget(queueKey(queue, 'parked'), 'w'))!.split('|').slice(1)
      // Synchronise on the server's clock: the park lapses when Redis time passes its deadline.
      for (;;) {
        const [s, us] = await ctx.admin.time()
        if (Number(s) * 1000 + Math.floor(Number(us) / 1000) > Number(till)) break
      }
      await b.enqueue(queue, [newTask('a')])
      expect(await ctx.admin.llen(queueKey(queue, 'wait'))).to.equal(1)
      expect(await ctx.admin.exists(queueKey(queue, 'h:w'))).to.equal(0)
      expect(await b.status(queue, 'a')).to.deep.equal({ status: 'enqueued' })
    } finally {
      await b.purge(queue)
      await b.close()
    }
  })

  it('a worker too busy to block takes what was handed to it at its next exchange', async () => {
    // A busy worker exchanges again as soon as a task ends, and each exchange parks it anew: work
    // handed over meanwhile must not wait in its list for a BLPOP that may be seconds away.
    const queue = uniqueQueue('hand')
    const b = open()
    try {
      await b.exchange(queue, 'w', [], 2, { ms: 5000, slots: 2 })
      await b.enqueue(queue, [newTask('a'), newTask('b')])
      expect(await ctx.admin.llen(queueKey(queue, 'h:w'))).to.equal(1)
      const next = await b.exchange(queue, 'w', [], 1, { ms: 5000, slots: 1 })
      expect(next.reserved.map(t => [t.id, t.attempt])).to.deep.equal([
        ['a', 1],
        ['b', 1],
      ])
      expect(await ctx.admin.exists(queueKey(queue, 'h:w'))).to.equal(0)
      const done = await completeAll(b, queue, next.reserved)
      expect(done.stale).to.deep.equal([])
      expect(await b.status(queue, 'b')).to.deep.equal({ status: 'completed', outcome: 'cb' })
    } finally {
      await b.unregisterWorker(queue, 'w')
      await b.close()
    }
  })

  it("a task cancelled while it waits in a busy worker's list is not passed on at its next exchange", async () => {
    const queue = uniqueQueue('hand')
    const b = open()
    try {
      await b.exchange(queue, 'w', [], 3, { ms: 5000, slots: 3 })
      await b.enqueue(queue, [newTask('a'), newTask('b')])
      await b.enqueue(queue, [newTask('c')])
      // Two messages: the second under the park's slot that was left.
      expect(await ctx.admin.llen(queueKey(queue, 'h:w'))).to.equal(2)
      expect(await b.cancel(queue, 'b')).to.equal(true)
      const next = await b.exchange(queue, 'w', [], 1, { ms: 5000, slots: 1 })
      expect(next.reserved.map(t => [t.id, t.attempt, t.name])).to.deep.equal([
        ['a', 1, 'func'],
        ['c', 1, 'func'],
      ])
      expect(await ctx.admin.exists(queueKey(queue, 'h:w'))).to.equal(0)
      const done = await completeAll(b, queue, next.reserved)
      expect(done.stale).to.deep.equal([])
      expect(await b.status(queue, 'a')).to.deep.equal({ status: 'completed', outcome: 'ca' })
      expect(await b.status(queue, 'c')).to.deep.equal({ status: 'completed', outcome: 'cc' })
      expect((await b.status(queue, 'b'))?.status).to.equal('cancelled')
    } finally {
      await b.unregisterWorker(queue, 'w')
      await b.close()
    }
  })

  it("a worker's next exchange cancels its park; one that asks for nothing does not park", async () => {
    const queue = uniqueQueue('hand')
    const b = open()
    try {
      await b.exchange(queue, 'w', [], 3, { ms: 5000, slots: 3 })
      await b.exchange(queue, 'w', [], 0, { ms: 5000, slots: 0 })
      expect(await ctx.admin.exists(queueKey(queue, 'parked'))).to.equal(0)
      await b.enqueue(queue, [newTask('a')])
      expect(await b.status(queue, 'a')).to.deep.equal({ status: 'enqueued' })
    } finally {
      await b.purge(queue)
      await b.close()
    }
  })

  it('unregistering releases what was handed over and never popped, its attempt uncounted', async () => {
    const queue = uniqueQueue('hand')
    const b = open()
    const other = open()
    try {
      await b.exchange(queue, 'w', [], 2, { ms: 5000, slots: 2 })
      await b.enqueue(queue, [newTask('a'), newTask('b')])
      expect(await ctx.admin.llen(queueKey(queue, 'h:w'))).to.equal(1)
      await b.unregisterWorker(queue, 'w')
      expect(await ctx.admin.exists(queueKey(queue, 'h:w'))).to.equal(0)
      const again = await other.exchange(queue, 'o', [], 5)
      expect(again.reserved.map(t => [t.id, t.attempt])).to.have.deep.members([
        ['a', 1],
        ['b', 1],
      ])
      await expectReleased(b, queue, 'a', 'w')
    } finally {
      await other.purge(queue)
      await Promise.all([b.close(), other.close()])
    }
  })

  it('a handover popped while nobody waits is kept for the next wait, or released on unregister', async () => {
    const queue = uniqueQueue('hand')
    const b = open()
    const other = open()
    try {
      const abort = new AbortController()
      const waiting = b.waitForWork(queue, 'w', 5000, abort.signal)
      await b.exchange(queue, 'w', [], 1, { ms: 5000, slots: 1 })
      abort.abort()
      expect(await waiting).to.deep.equal([])
      await b.enqueue(queue, [newTask('a')])
      // The BLPOP still out pops the handover with nobody waiting: the next wait gets it.
      const handed = await b.waitForWork(queue, 'w', 5000)
      expect(handed.map(t => t.id)).to.deep.equal(['a'])
      await b.exchange(queue, 'w', [{ ...handed[0]!, outcome: '', release: true }], 0)
      const again = await other.exchange(queue, 'o', [], 1)
      expect(again.reserved.map(t => [t.id, t.attempt])).to.deep.equal([['a', 1]])
    } finally {
      await b.unregisterWorker(queue, 'w')
      await other.purge(queue)
      await Promise.all([b.close(), other.close()])
    }
  })

  it('the sweep drops the park of a worker whose lease lapsed: its task goes to a live worker', async () => {
    const queue = uniqueQueue('hand')
    const b = open()
    const parked = queueKey(queue, 'parked')
    try {
      await b.exchange(queue, 'dead', [], 2, { ms: 60_000, slots: 2 })
      await b.enqueue(queue, [newTask('a', { heartrate: 10, attempts: 2 })])
      // 'dead' takes the task, parks again (its last exchange before it dies) and never renews.
      expect((await b.waitForWork(queue, 'dead', 5000)).map(t => t.id)).to.deep.equal(['a'])
      await b.exchange(queue, 'dead', [], 1, { ms: 60_000, slots: 1 })
      expect(await ctx.admin.hget(parked, 'dead')).to.match(/^t1\|/)
      await lapse()
      await b.exchange(queue, 'live', [], 5, { ms: 60_000, slots: 5 })
      expect(await b.sweep(queue, 1)).to.equal(1)
      expect(await ctx.admin.hexists(parked, 'dead')).to.equal(0)
      // A live park is kept (the task the sweep put back took one of its five slots).
      expect(await ctx.admin.hget(parked, 'live')).to.match(/^t4\|/)
      const handed = await b.waitForWork(queue, 'live', 5000)
      expect(handed.map(t => [t.id, t.attempt])).to.deep.equal([['a', 2]])
    } finally {
      await b.unregisterWorker(queue, 'dead')
      await b.unregisterWorker(queue, 'live')
      await b.purge(queue)
      await b.close()
    }
  })

  it('hands over no more than the park slots, though the exchange asked for more (prefetch)', async () => {
    const queue = uniqueQueue('hand')
    const b = open()
    try {
      await b.exchange(queue, 'w', [], 3, { ms: 5000, slots: 1 })
      await b.enqueue(queue, [newTask('a'), newTask('b')])
      expect((await b.waitForWork(queue, 'w', 5000)).map(t => t.id)).to.deep.equal(['a'])
      expect(await b.status(queue, 'b')).to.deep.equal({ status: 'enqueued' })
      // No slot to hand over: no park.
      await b.exchange(queue, 'w', [], 3, { ms: 5000, slots: 0 })
      expect(await ctx.admin.hexists(queueKey(queue, 'parked'), 'w')).to.equal(0)
    } finally {
      await b.unregisterWorker(queue, 'w')
      await b.purge(queue)
      await b.close()
    }
  })

  it('handovers never popped (their worker died parked) go back uncounted when their leases lapse', async () => {
    const queue = uniqueQueue('hand')
    const b = open()
    try {
      // Two handovers under one park of two slots, neither popped.
      await b.exchange(queue, 'dead', [], 2, { ms: 60_000, slots: 2 })
      await b.enqueue(queue, [newTask('a', { heartrate: 10, attempts: 1 })])
      await b.enqueue(queue, [newTask('b', { heartrate: 10, attempts: 1 })])
      expect(await ctx.admin.llen(queueKey(queue, 'h:dead'))).to.equal(2)
      await lapse()
      expect(await b.sweep(queue, 1)).to.equal(2)
      expect(await ctx.admin.exists(queueKey(queue, 'h:dead'))).to.equal(0)
      // With one attempt allowed, a counted attempt would have expired them.
      const again = (await b.exchange(queue, 'live', [], 2)).reserved
      expect(again.map(t => [t.id, t.attempt]).sort()).to.deep.equal([
        ['a', 1],
        ['b', 1],
      ])
      await expectReleased(b, queue, 'b', 'dead')
    } finally {
      await b.purge(queue)
      await b.close()
    }
  })
  it('a worker of an earlier version (a park without "t") is handed JSON, and a text handover is read either way', async () => {
    const queue = uniqueQueue('hand')
    const b = open()
    try {
      // The park an earlier version writes: no "t".
      await ctx.admin.hset(queueKey(queue, 'parked'), 'w', `2|${Date.now() + 5000}|w:oldp`)
      await b.enqueue(queue, [newTask('a', { payload: '{"json":"say \\"hi\\""}' })])
      const [message] = await ctx.admin.lrange(queueKey(queue, 'h:w'), 0, -1)
      expect(message!.startsWith('["a","w:oldp.1"')).to.equal(true)
      // Its next handover keeps the earlier form.
      expect(await ctx.admin.hget(queueKey(queue, 'parked'), 'w')).to.match(/^1\|\d+\|w:oldp1$/)
      const handed = await b.waitForWork(queue, 'w', 5000)
      expect(handed.map(t => [t.id, t.token, t.payload])).to.deep.equal([
        ['a', 'w:oldp.1', '{"json":"say \\"hi\\""}'],
      ])
      // A text message left in the list is taken by the worker's next exchange, as it is.
      await ctx.admin.hset(queueKey(queue, 'parked'), 'w', `t1|${Date.now() + 5000}|w:newp1`)
      await b.enqueue(queue, [newTask('b', { payload: '{"json":"say \\"hi\\""}' })])
      const next = await b.exchange(queue, 'w', [{ ...handed[0]!, outcome: 'c1' }], 0)
      expect(next.reserved.map(t => [t.id, t.token, t.payload])).to.deep.equal([
        ['b', 'w:newp1.1', '{"json":"say \\"hi\\""}'],
      ])
      expect(await ctx.admin.llen(queueKey(queue, 'h:w'))).to.equal(0)
      const end = await b.exchange(queue, 'w', [{ ...next.reserved[0]!, outcome: 'c2' }], 0)
      expect(end.stale).to.deep.equal([])
      expect(await b.status(queue, 'b')).to.deep.equal({ status: 'completed', outcome: 'c2' })
    } finally {
      await b.purge(queue)
      await b.close()
    }
  })

  it('a record holding the separator of text handovers (written by something other than worq) is handed over as JSON, intact', async () => {
    const queue = uniqueQueue('hand')
    const b = open()
    try {
      await b.exchange(queue, 'w', [], 2, { ms: 5000, slots: 2 })
      const payload = '"a\x1fb\x1ec"'
      await b.enqueue(queue, [newTask('h', { payload })])
      const [message] = await ctx.admin.lrange(queueKey(queue, 'h:w'), 0, -1)
      expect(message!.startsWith('["h",')).to.equal(true)
      const handed = await b.waitForWork(queue, 'w', 5000)
      expect(handed.map(t => [t.id, t.attempt, t.payload])).to.deep.equal([['h', 1, payload]])
      // The next handover, of a plain record, is text again.
      await b.enqueue(queue, [newTask('p')])
      const [next] = await ctx.admin.lrange(queueKey(queue, 'h:w'), 0, -1)
      expect(next!.startsWith('\x1e\x1fp\x1f')).to.equal(true)
      expect((await b.waitForWork(queue, 'w', 5000)).map(t => t.id)).to.deep.equal(['p'])
      const done = await b.exchange(queue, 'w', [{ ...handed[0]!, outcome: 'c1' }], 0)
      expect(done.stale).to.deep.equal([])
    } finally {
      await b.unregisterWorker(queue, 'w')
      await b.purge(queue)
      await b.close()
    }
  })
})
