import { expect } from 'chai'
import { EventLog } from '../../lib/backends/memory/event-log.js'

/** An event of the log (what its readers see, less the id it is given). */
const event = (n: number) => ({ type: 'enqueued' as const, id: `t${n}`, name: 'x', time: n })

// memory://'s event log keeps the last `max` events. It drops the oldest by moving a start index
// and cuts its array only now and then; what a reader sees must not depend on when it was cut.
describe('memory: the event log', () => {
  it('keeps exactly the last max events, numbered on, across many appends and cuts', async () => {
    const log = new EventLog()
    const max = 7
    for (let n = 1; n <= 1000; n++) {
      log.append([event(n)], max)
      const all = await log.read('0', { count: 100, blockMs: 0 })
      const ids = all.events.map(e => Number(e.eventId))
      const first = Math.max(1, n - max + 1)
      expect(ids).to.deep.equal(Array.from({ length: n - first + 1 }, (_, i) => first + i))
      expect(all.events.map(e => e.id)).to.deep.equal(ids.map(i => `t${i}`))
      expect(all.gap).to.equal(first > 1)
      expect(all.last).to.equal(String(n))
    }
    // A reader that is up to date gets the events after its position, without a gap.
    const after = await log.read('997', { count: 100, blockMs: 0 })
    expect(after.events.map(e => e.eventId)).to.deep.equal(['998', '999', '1000'])
    expect(after.gap).to.equal(false)
    // Batches larger than max keep their last max events.
    log.append(
      Array.from({ length: 20 }, (_, i) => event(1001 + i)),
      max,
    )
    const tail = await log.read('0', { count: 100, blockMs: 0 })
    expect(tail.events.map(e => e.eventId)).to.deep.equal(
      Array.from({ length: max }, (_, i) => String(1020 - max + 1 + i)),
    )
  })
})
