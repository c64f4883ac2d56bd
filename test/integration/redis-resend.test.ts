import { expect } from 'chai'
import { encodeTask } from '../../lib/backends/redis/codec.js'
import { queueKey } from '../../lib/backends/redis/keys.js'
import { RedisBackend } from '../../lib/backends/redis/redis.js'
import { Scripts } from '../../lib/backends/redis/scripts.js'
import { useRedisAdmin } from '../helpers/redis-server.js'
import { uniqueQueue } from '../helpers/util.js'
import { newTask } from '../helpers/new-task.js'

// ioredis resends a command whose reply was lost with the connection: the same enqueue call, with
// the same generations, may reach Redis twice.
describe('redis: a resent enqueue', () => {
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
})
