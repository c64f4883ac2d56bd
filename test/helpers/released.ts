import { expect } from 'chai'
import type { Backend } from '../../lib/backends/backend.js'

/**
 * Checks a task's recorded events after it was reserved, given back unstarted by `worker` and
 * reserved again: `enqueued`, `started`, `enqueued` (released, the same attempt, that worker),
 * `started` with the same attempt.
 */
export async function expectReleased(
  backend: Backend,
  queue: string,
  id: string,
  worker: string,
): Promise<void> {
  const { events } = await backend.readEvents(queue, '0', { count: 1000, blockMs: 0 })
  const mine = events.filter(e => e.id === id)
  expect(mine.map(e => e.type)).to.deep.equal(['enqueued', 'started', 'enqueued', 'started'])
  const [, took, back, again] = mine
  expect(took).to.include({ attempt: 1, workerId: worker })
  expect(back).to.include({ released: true, attempt: 1, workerId: worker })
  expect(again).to.include({ attempt: 1 })
  expect(again!.workerId).to.not.equal(undefined)
}
