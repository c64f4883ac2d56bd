import { expect } from 'chai'
import { checkOptions, newTaskId, resolveOptions } from '../../lib/options.js'
import {
  backoffDelay,
  MAX_DURATION_MS,
  MAX_TIMER_MS,
  storedBackoff,
} from '../../lib/backends/backend.js'
import { TaskSpace } from '../../lib/taskspace.js'
import { getBroker } from '../../lib/broker.js'
import { task } from '../../lib/queue.js'
import type { TaskOptions } from '../../lib/types.js'
import { WorkerPool } from '../../lib/worker/pool.js'

describe('options', () => {
  it('fills in defaults and lets later layers win', () => {
    const o = resolveOptions({ heartrate: 50, onError: 'pass' }, { heartrate: 70 })
    expect(o.heartrate).to.equal(70)
    expect(o.onError).to.equal('pass')
    expect(o.resultTimeout).to.equal(3_600_000)
    expect(o.attempts).to.equal(1)
    expect(o.runAt(1000)).to.equal(0)
    expect(resolveOptions({ delay: 5 }).runAt(1000)).to.equal(1005)
  })

  it('says what to change for bad options', () => {
    expect(() => checkOptions({ heartrat: 1 })).to.throw(
      TypeError,
      /Unknown task option `heartrat`/,
    )
    expect(() => checkOptions({ onError: 'skip' })).to.throw(
      TypeError,
      /Expected `onError` to be 'fail' or 'pass'/,
    )
    expect(() => checkOptions({ attempts: 0 })).to.throw(TypeError, /Expected `attempts`/)
    expect(() => checkOptions({ resultTimeout: -1 })).to.throw(
      TypeError,
      /Expected `resultTimeout`/,
    )
    expect(() => checkOptions({ id: '' })).to.throw(TypeError, /Expected the task `id`/)
    expect(() => checkOptions({ backoff: { type: 'linear', delay: 1 } })).to.throw(
      TypeError,
      /backoff.type/,
    )
    expect(() => checkOptions({ runAt: new Date('nope') })).to.throw(TypeError, /runAt/)
    // A delay past 100 years is refused at the call: a task delayed by 1e300 ms was enqueued with
    // a run time no Date can hold.
    expect(() => checkOptions({ delay: 1e300 })).to.throw(
      TypeError,
      /`delay` to be a number from 0 to 3153600000000 \(milliseconds; 100 years\)/,
    )
    // Durations that set timers stop at a timer's limit (a longer Node timer fires at once).
    for (const o of [
      { resultTimeout: 1e20 },
      { heartrate: MAX_TIMER_MS + 1 },
      { timeout: 3e9 },
      { backoff: 1e300 },
      { backoff: { type: 'exponential', delay: 1e17 } },
      { cache: { ttl: 1e300 } },
    ])
      expect(() => checkOptions(o), JSON.stringify(o)).to.throw(
        TypeError,
        /to be a number from \d+ to 2147483647 \(milliseconds; about 24.8 days\)/,
      )
    expect(checkOptions({ timeout: MAX_TIMER_MS })).to.deep.equal({ timeout: MAX_TIMER_MS })
    // Numbers a backend cannot store, and values that are not numbers at all.
    expect(() => checkOptions({ attempts: 2 ** 31 })).to.throw(TypeError, /from 1 to 1000000/)
    expect(() => checkOptions({ backoff: { type: 'fixed', delay: 1, jitter: NaN } })).to.throw(
      TypeError,
      /jitter/,
    )
    for (const id of ['a\uD800b', 'x\u007fy', 'x\u0085y'])
      expect(() => checkOptions({ id }), JSON.stringify(id)).to.throw(TypeError, /task `id`/)
    // Fractional durations are taken, and rounded up to whole ms where they are resolved.
    const r = resolveOptions({ delay: 1.5, timeout: 1000.2, heartrate: 10.5, resultTimeout: 1.1 })
    expect([r.timeout, r.heartrate, r.resultTimeout, r.runAt(0)]).to.deep.equal([1001, 11, 2, 2])
    expect(resolveOptions({ cache: { ttl: 1000.5 }, backoff: 1.5 })).to.include({ cacheTtl: 1001 })
    expect(resolveOptions({ backoff: 1.5 }).backoff.delay).to.equal(2)
    expect(checkOptions({ delay: MAX_DURATION_MS })).to.deep.equal({ delay: MAX_DURATION_MS })
  })

  it('runAt and delay together: runAt silently won; both in one options object is a TypeError naming them', async () => {
    const runAt = new Date(Date.now() + 60_000)
    const both = { runAt, delay: 1000 }
    const named = /`runAt` or `delay`, got both: give `runAt` \(a Date\) or `delay`/
    expect(() => checkOptions(both)).to.throw(TypeError, named)
    expect(() => checkOptions({ runAt, delay: 0 })).to.throw(TypeError, named)
    const broker = getBroker('memory://', 'run-at-and-delay')
    try {
      expect(() => broker.queue('', both)).to.throw(TypeError, named)
      const q = broker.queue()
      expect(() => task(q.math.add, both)).to.throw(TypeError, named)
      // Across layers they are one setting: the later layer's replaces both of the earlier's.
      const later = (...layers: TaskOptions[]) => resolveOptions(...layers).runAt(1000)
      expect(later({ delay: 5 }, { runAt })).to.equal(runAt.getTime())
      expect(later({ runAt }, { delay: 5 })).to.equal(1005)
      expect(later({ runAt }, { priority: 1 })).to.equal(runAt.getTime())
      expect(later({ delay: 5 }, { runAt: undefined })).to.equal(1005)
      // task() over task(): the outer options replace the inner's timing too.
      const delayed = task(q.math.add, { delay: 5 })
      const at = task(delayed, { runAt })
      const d = await at(1, 2)
      expect((await d.info())?.runAt?.getTime()).to.equal(runAt.getTime())
      const queueDelay = broker.queue('', { delay: 60_000 })
      const overridden = await task(queueDelay.math.add, { runAt })(1, 2)
      expect((await overridden.info())?.runAt?.getTime()).to.equal(runAt.getTime())
      await broker.purge()
    } finally {
      await broker.close()
    }
  })

  it('computes fixed and exponential backoff with jitter and a cap', () => {
    expect(backoffDelay(storedBackoff(100), 3, 0.5)).to.equal(100)
    const exp = storedBackoff({ type: 'exponential', delay: 100, jitter: 0.5, maxDelay: 350 })
    expect(backoffDelay(exp, 1, 0)).to.equal(100)
    expect(backoffDelay(exp, 2, 0)).to.equal(200)
    expect(backoffDelay(exp, 3, 0)).to.equal(350)
    expect(backoffDelay(exp, 2, 1)).to.equal(100)
    // An exponential backoff without maxDelay stops at MAX_DURATION_MS, however many attempts.
    const grow = storedBackoff({ type: 'exponential', delay: 1000 })
    expect(backoffDelay(grow, 200, 0)).to.equal(MAX_DURATION_MS)
    expect(backoffDelay(grow, 5000, 0)).to.equal(MAX_DURATION_MS)
    expect(backoffDelay(storedBackoff({ type: 'exponential', delay: 0 }), 5000, 0)).to.equal(0)
  })
})

describe('task ids', () => {
  it('are 21 URL-safe characters and never start with a dash (the worq command takes them as they are)', () => {
    const ids = Array.from({ length: 20_000 }, newTaskId)
    for (const id of ids) expect(id).to.match(/^[A-Za-z0-9_][A-Za-z0-9_-]{20}$/)
    expect(new Set(ids).size).to.equal(ids.length)
  })
})

describe('TaskSpace and names', () => {
  it('names tasks from the function or the given name, under the space', () => {
    const s = new TaskSpace('a.b', { x: () => 1 }).task(function named() {}).task(() => 2, 'y')
    expect([...s.tasks.keys()]).to.deep.equal(['a.b.x', 'a.b.named', 'a.b.y'])
  })

  it('rejects bad names, anonymous functions and duplicates with clear errors', () => {
    expect(() => new TaskSpace('a..b')).to.throw(TypeError, /dotted name/)
    expect(() => new TaskSpace('a').task(() => 1)).to.throw(TypeError, /anonymous/)
    expect(() => new TaskSpace('a', { x: () => 1 }).task(() => 1, 'x')).to.throw(
      TypeError,
      /already registered/,
    )
    expect(() => getBroker('nope://x')).to.throw(/scheme "nope:" is not supported/)
    expect(() => getBroker('memory://', 'bad name')).to.throw(TypeError, /Expected `name`/)
  })
})

describe('WorkerPool options', () => {
  it('refuses a worker id that would break its fencing tokens, and says what to change', async () => {
    const broker = getBroker('memory://', 'pool-options')
    try {
      for (const id of ['', 'a|b', 'line\nbreak', 'x'.repeat(65), 7 as unknown as string])
        expect(() => new WorkerPool(broker, { id }), JSON.stringify(id)).to.throw(
          TypeError,
          /Expected `id` to be 1 to 64 characters without `\|` or control characters/,
        )
      const pool = new WorkerPool(broker, { id: 'worker-1 (eu-west)' })
      expect(pool.id).to.equal('worker-1 (eu-west)')
    } finally {
      await broker.close()
    }
  })
})
