import { expect } from 'chai'
import { getBroker } from '../../lib/index.js'
import { uniqueQueue } from '../helpers/util.js'

describe('EventStream misuse', () => {
  it('a second for await over one stream is a TypeError that says to open another, and the first goes on', async () => {
    const broker = getBroker('memory://', uniqueQueue('events'))
    try {
      const events = broker.events()
      await events.ready
      const first = events[Symbol.asyncIterator]()
      const next = first.next()
      const err = await events[Symbol.asyncIterator]()
        .next()
        .catch((e: unknown) => e)
      expect(err).to.be.instanceOf(TypeError)
      expect((err as Error).message).to.match(/iterated once.*broker\.events\(/)
      await broker.queue().noop()
      expect((await next).value).to.include({ type: 'enqueued', name: 'noop' })
      await events.close()
    } finally {
      await broker.purge()
      await broker.close()
    }
  })
})
