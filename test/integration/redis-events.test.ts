import { expect } from 'chai'
import { getBroker, type QueueEvent } from '../../lib/index.js'
import { queueKey } from '../../lib/backends/redis/keys.js'
import { useRedisAdmin } from '../helpers/redis-server.js'
import { uniqueQueue, until } from '../helpers/util.js'

describe('redis: the event stream', () => {
  const redis = useRedisAdmin()

  it('entries of every format worq has written (field e, then v, now f) read as one sequence', async () => {
    const queue = uniqueQueue('evfmt')
    const stream = queueKey(queue, 'ev')
    const at = Date.now() - 1000
    // Event 1, as the first versions wrote it: JSON of the columns.
    const columns = {
      at,
      t: ['enqueued'],
      i: ['a'],
      n: ['add'],
      a: [false],
      w: [false],
      x: [false],
    }
    await redis.admin.xadd(stream, '1-0', 'e', JSON.stringify(columns))
    // Events 2 and 3, column by column: 'started' says its run with a whole tokens value.
    const head = `add|${at}|1|0|${at - 40}|w1|1|0`
    const v = [
      String(at),
      ['started', 'completed'].join('\x1f'),
      ['a', 'a'].join('\x1f'),
      [`tok|||3600000|c|g\n${head}`, head].join('\x1f'),
      ['', ''].join('\x1f'),
    ].join('\x1e')
    await redis.admin.xadd(stream, '3-0', 'v', v)
    await redis.admin.set(queueKey(queue, 'evn'), '3')
    const broker = getBroker(redis.url, queue)
    const seen: QueueEvent[] = []
    const events = broker.events({ since: '0' })
    const reading = (async () => {
      for await (const e of events) seen.push(e)
    })()
    try {
      // Events 4 and on, as this version writes them (field f).
      const d = await broker.queue().add(1, 2)
      await until(() => seen.some(e => e.id === d.id), 5000, 'the new enqueue event')
      expect(seen.map(e => [e.eventId, e.type, e.id, e.name])).to.deep.equal([
        ['1', 'enqueued', 'a', 'add'],
        ['2', 'started', 'a', 'add'],
        ['3', 'completed', 'a', 'add'],
        ['4', 'enqueued', d.id, 'add'],
      ])
      const started = seen[1] as Extract<QueueEvent, { type: 'started' }>
      expect([started.attempt, started.workerId]).to.deep.equal([1, 'w1'])
      const completed = seen[2] as Extract<QueueEvent, { type: 'completed' }>
      expect(completed.ms).to.equal(40)
      const fields = (await redis.admin.xrange(stream, '4-0', '+'))[0]![1]
      expect(fields[0]).to.equal('f')
    } finally {
      events.close()
      await reading
      await broker.close()
      await redis.admin.del(stream, queueKey(queue, 'evn'))
    }
  })
})
