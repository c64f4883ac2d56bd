import { expect } from 'chai'
import type { NewTask } from '../../lib/backends/backend.js'
import { RedisBackend } from '../../lib/backends/redis/redis.js'
import { redisUrl } from '../helpers/redis-server.js'
import { uniqueQueue } from '../helpers/util.js'
import { newTask as baseTask } from '../helpers/new-task.js'

/** Tasks of these tests: heartrate 10 ms (a lease of 1 020 ms). */
const newTask = (id: string, extra: Partial<NewTask> = {}) =>
  baseTask(id, { heartrate: 10, ...extra })

const open = (url: string) => new RedisBackend(url, { maxPayloadBytes: 1 << 20 })
const lapse = () => new Promise(r => setTimeout(r, 1050)) // lease = 2 × 10 + 1000 ms: time is under test

describe('redis: leases and fencing', () => {
  let url: string
  before(async () => {
    url = await redisUrl()
  })

  it("a stale worker's finish and renewal are refused after its lease was swept and the task re-run", async () => {
    const queue = uniqueQueue('lease')
    const slow = open(url)
    const fast = open(url)
    try {
      await slow.enqueue(queue, [newTask('t1', { attempts: 2 })])
      const [mine] = (await slow.exchange(queue, 'slow', [], 1)).reserved
      expect(mine!.attempt).to.equal(1)
      await lapse()
      expect(await fast.sweep(queue, 10_000)).to.equal(1)
      expect(await slow.sweep(queue, 10_000)).to.equal(0) // the guard holds for the interval
      const [again] = (await fast.exchange(queue, 'fast', [], 1)).reserved
      expect(again!.attempt).to.equal(2)
      expect(again!.token).to.not.equal(mine!.token)
      const late = await slow.exchange(queue, 'slow', [{ ...mine!, outcome: 'c"late"' }], 0)
      expect(late.stale).to.deep.equal(['t1'])
      expect(await slow.renew(queue, [{ ...mine!, heartrate: 10 }])).to.deep.equal(['t1'])
      expect(await fast.renew(queue, [{ ...again!, heartrate: 10 }])).to.deep.equal([])
      expect((await slow.status(queue, 't1'))!.status).to.equal('processing')
      const ok = await fast.exchange(queue, 'fast', [{ ...again!, outcome: 'c"fast"' }], 0)
      expect(ok.stale).to.deep.equal([])
      expect(await slow.status(queue, 't1')).to.deep.equal({
        status: 'completed',
        outcome: 'c"fast"',
      })
    } finally {
      await Promise.all([slow.close(), fast.close()])
    }
  })

  it('with no attempts left a swept task expires, naming task, queue, id and attempts', async () => {
    const queue = uniqueQueue('lease')
    const b = open(url)
    try {
      await b.enqueue(queue, [newTask('t2')])
      await b.exchange(queue, 'w', [], 1)
      await lapse()
      expect(await b.sweep(queue, 10_000)).to.equal(1)
      const state = await b.status(queue, 't2')
      expect(state!.status).to.equal('expired')
      expect(JSON.parse(state!.outcome!.slice(1))).to.include({
        taskName: 'func',
        queue,
        taskId: 't2',
        attempts: 1,
      })
    } finally {
      await b.close()
    }
  })

  it('an oversize outcome is stored as a failure that says so', async () => {
    const queue = uniqueQueue('lease')
    const b = new RedisBackend(url, { maxPayloadBytes: 100 })
    try {
      await b.enqueue(queue, [newTask('big')])
      const [t] = (await b.exchange(queue, 'w', [], 1)).reserved
      await b.exchange(queue, 'w', [{ ...t!, outcome: 'c"' + 'x'.repeat(200) + '"' }], 0)
      const state = await b.status(queue, 'big')
      expect(state!.status).to.equal('failed')
      expect(state!.outcome)
        .to.match(/PayloadTooLarge/)
        .and.match(/over the limit of 100 bytes/)
    } finally {
      await b.close()
    }
  })
})
