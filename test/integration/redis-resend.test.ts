import { expect } from 'chai'
import { encodeTask } from '../../lib/backends/redis/codec.js'
import { queueKey } from '../../lib/backends/redis/keys.js'
import { RedisBackend } from '../../lib/backends/redis/redis.js'
import { Scripts } from '../../lib/backends/redis/scripts.js'
import { useRedisAdmin } from '../helpers/redis-server.js'
import { uniqueQueue } from '../helpers/util.js'
import { newTask } from '../helpers/new-task.js'

// ioredis resends a command whose reply was lost with the connection: the same enqueue call, with
// the same generations, or the same exchange, with the same nonce, may reach Redis twice.
describe('redis: a resent call', () => {
  const ctx = useRedisAdmin()
  const open = () => new RedisBackend(ctx.url, { maxPayloadBytes: 1 << 20 })

  it('finds its task live, or ended (its outcome keeps the generation), and neither refuses nor re-runs it', async () => {
    const queue = uniqueQueue('resend')
    const b = open()
    const scripts = new Scripts(ctx.admin)
    try {
      const entry = encodeTask(newTask('a'), b.clientId, Date.now())
      expect(await scripts.enqueue(queue, '', [entry])).to.deep.equal([[1], [], []])
      // Resent while the task waits: the same generation, not a duplicate.
      expect(await scripts.enqueue(queue, '', [entry])).to.deep.equal([[1], [], []])
      expect(await ctx.admin.llen(queueKey(queue, 'wait'))).to.equal(1)
      const [t] = (await b.exchange(queue, 'w', [], 1)).reserved
      await b.exchange(queue, 'w', [{ id: t!.id, token: t!.token, outcome: 'c1' }], 0)
      // Resent after the task ended: acknowledged, the outcome stays, nothing runs again.
      expect(await scripts.enqueue(queue, '', [entry])).to.deep.equal([[1], [], []])
      expect(await b.status(queue, 'a')).to.deep.equal({ status: 'completed', outcome: 'c1' })
      expect(await ctx.admin.llen(queueKey(queue, 'wait'))).to.equal(0)
      // A new call with the same id (another generation) may reuse an ended task's id.
      const again = encodeTask(newTask('a'), b.clientId, Date.now())
      expect(await scripts.enqueue(queue, '', [again])).to.deep.equal([[1], [], []])
      expect(await b.status(queue, 'a')).to.deep.equal({ status: 'enqueued' })
    } finally {
      await b.purge(queue)
      await b.close()
    }
  })

  it('a live task of another call holding the id is a duplicate', async () => {
    const queue = uniqueQueue('resend')
    const b = open()
    const scripts = new Scripts(ctx.admin)
    try {
      await scripts.enqueue(queue, '', [encodeTask(newTask('a'), b.clientId, Date.now())])
      const other = encodeTask(newTask('a'), b.clientId, Date.now())
      expect(await scripts.enqueue(queue, '', [other])).to.deep.equal([[0], [], []])
    } finally {
      await b.purge(queue)
      await b.close()
    }
  })

  it('a resent exchange is answered from its memo: the same reservations and stale ids, nothing reserved twice', async () => {
    const queue = uniqueQueue('resend')
    const b = open()
    const scripts = new Scripts(ctx.admin)
    try {
      const entries = ['a', 'b', 'c'].map(id => encodeTask(newTask(id), b.clientId, Date.now()))
      await scripts.enqueue(queue, '', entries)
      const lost = { id: 'gone', token: 'w:old.1', outcome: 'c1' }
      const first = await scripts.exchange(queue, 'w:n1', 2, false, '', 'w', undefined, '', [lost])
      const again = await scripts.exchange(queue, 'w:n1', 2, false, '', 'w', undefined, '', [lost])
      expect(first[0]).to.deep.equal(['gone'])
      expect(first[1]).to.have.length(10)
      // (An attempt comes as text or as a number; Node reads either with Number().)
      const same = (r: unknown[]) => r.map((v, i) => (i % 5 === 2 ? Number(v) : v))
      expect(again[0]).to.deep.equal(first[0])
      expect(same(again[1])).to.deep.equal(same(first[1]))
      // The third task was not reserved by the resend; a new call takes it.
      const next = await scripts.exchange(queue, 'w:n2', 2, false, '', 'w', undefined, '', [])
      expect(next[1].filter((_, i) => i % 5 === 0)).to.deep.equal(['c'])
    } finally {
      await b.purge(queue)
      await b.close()
    }
  })
})
