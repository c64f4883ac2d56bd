/* eslint-disable @typescript-eslint/no-unused-vars -- values here exist for their types */
/**
 * Type tests, checked by `tsc --noEmit` in `npm test`: TaskSpace types flow to the client.
 * Nothing here runs; a wrong type is a compile error, and each @ts-expect-error must stay an error.
 */
import pg from 'pg'
import { getQueue, task, TaskSpace, type Deferred, type MissingNodeTypes } from '../../lib/index.js'

const math = new TaskSpace('math', {
  add: (a: number, b: number) => a + b,
  async sum(xs: number[]) {
    return xs.reduce((s, x) => s + x, 0)
  },
})
const text = new TaskSpace('text.tools', { upper: (s: string) => s.toUpperCase() })
const more = new TaskSpace('more').task((n: number) => n * 2, 'double')

type Equal<A, B> =
  (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false
const assertType = <T extends true>(_?: T) => undefined

export async function typeTests() {
  const q = getQueue<typeof math | typeof text | typeof more>('memory://')

  const a = q.math.add(1, 2)
  assertType<Equal<typeof a, Promise<Deferred<number>>>>()
  const s = await q.math.sum([await a, q.math.add(3, 4), 5])
  assertType<Equal<typeof s, Deferred<number>>>()
  const u = await q.text.tools.upper('x')
  assertType<Equal<typeof u, Deferred<string>>>()
  const d = await q.more.double(2)
  assertType<Equal<typeof d, Deferred<number>>>()

  // @ts-expect-error: a string is not a number
  void q.math.add(1, 'x')
  // @ts-expect-error: a Deferred<string> is not a Deferred<number>
  void q.math.add(1, u)
  // @ts-expect-error: no such task in the typed spaces
  void q.math.mul(1, 2)

  const v: number = await s.result(1000)
  const fire = await task(q.math.add, { ignoreResult: true })(1, 2)
  assertType<Equal<typeof fire, undefined>>()
  const withId = await task(q.math.add, { id: 'x' })(1, 2)
  assertType<Equal<typeof withId, Deferred<number>>>()
  // A node-postgres client (or pool client) is a `tx`; an object without `query` is not.
  const inTx = await task(q.math.add, { tx: new pg.Client() })(1, 2)
  assertType<Equal<typeof inTx, Deferred<number>>>()
  // @ts-expect-error: tx needs a query method
  void task(q.math.add, { tx: {} })

  const sub = getQueue<typeof math, 'math'>('memory://', 'default', 'math')
  void sub.add(1, 2)

  const loose = getQueue('memory://')
  void loose.anything.goes(1, 'x', { y: 2 })

  // A queue is AsyncDisposable (`await using`), without naming that global in its declaration.
  const disposable: AsyncDisposable = q
  const looseDisposable: AsyncDisposable = loose
  // With @types/node loaded, a typed queue is never the sentence that reports it missing.
  assertType<Equal<Extract<typeof q, MissingNodeTypes>, never>>()
  return v
}
