/**
 * Model-based property test: random sequences of enqueues (plain, failing, Deferred-argument
 * graphs with onError 'fail' or 'pass'), cancels and worker crashes give the outcomes a simple
 * model predicts, on memory:// and on Redis alike.
 */
import { expect } from 'chai'
import fc from 'fast-check'
import {
  getBroker,
  task,
  TaskCancelled,
  TaskExpired,
  TaskFailure,
  TaskSpace,
  WorkerPool,
  type Deferred,
} from '../../lib/index.js'
import { backends } from '../helpers/backends.js'
import { uniqueQueue } from '../helpers/util.js'

type Op =
  | { kind: 'value'; x: number }
  | { kind: 'boom' }
  | { kind: 'dep'; args: number[]; pass: boolean }
  | { kind: 'cancel'; target: number }
  | { kind: 'crash' }

/** What a task ends as: a value, or a failure kind and the task it came from. */
type Outcome = { ok: unknown } | { fail: 'failed' | 'expired' | 'cancelled'; from: Set<number> }

const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant('value' as const),
      x: fc.integer({ min: 0, max: 99 }),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('boom' as const) }) },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('dep' as const),
      args: fc.array(fc.nat(), { minLength: 1, maxLength: 3 }),
      pass: fc.boolean(),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('cancel' as const), target: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('crash' as const) }) },
)

/** The model: tasks are numbered in enqueue order; `ready` is the FIFO line before any worker runs. */
function predict(ops: Op[]) {
  const tasks: Array<{
    op: Op
    args: number[]
    outcome?: Outcome
    arrived: Array<Outcome | undefined>
  }> = []
  const ready: number[] = []
  const finish = (t: number, o: Outcome) => {
    const task = tasks[t]!
    if (task.outcome) return
    task.outcome = o
    const i = ready.indexOf(t)
    if (i >= 0) ready.splice(i, 1)
    tasks.forEach((d, k) => {
      if (d.outcome || !d.args.includes(t)) return
      d.args.forEach((a, slot) => a === t && (d.arrived[slot] = o))
      if ('fail' in o && d.op.kind === 'dep' && !d.op.pass) finish(k, o)
      else if (d.arrived.every(x => x)) ready.push(k)
    })
  }
  for (const op of ops) {
    if (op.kind === 'value' || op.kind === 'boom') {
      tasks.push({ op, args: [], arrived: [] })
      ready.push(tasks.length - 1)
    } else if (op.kind === 'dep') {
      if (tasks.length === 0) continue
      const args = op.args.map(a => a % tasks.length)
      const t = tasks.push({ op, args, arrived: args.map(() => undefined) }) - 1
      args.forEach((a, slot) => {
        const o = tasks[a]!.outcome
        if (o) tasks[t]!.arrived[slot] = o
      })
      const failed = tasks[t]!.arrived.find(o => o && 'fail' in o)
      if (failed && !op.pass) finish(t, failed)
      else if (tasks[t]!.arrived.every(o => o)) ready.push(t)
    } else if (op.kind === 'cancel') {
      if (tasks.length === 0) continue
      const t = op.target % tasks.length
      if (!tasks[t]!.outcome) finish(t, { fail: 'cancelled', from: new Set([t]) })
    }
  }
  // Crashes come after every enqueue: each takes the next ready task and never finishes it. The
  // sweep expires them together, so their dependents may see any of them first.
  const crashes = ops.filter(op => op.kind === 'crash').length
  const crashed = new Set(ready.slice(0, crashes))
  // Then a worker runs everything left, in any order.
  const run = (t: number): Outcome => {
    const task = tasks[t]!
    if (task.outcome) return task.outcome
    const op = task.op
    let o: Outcome
    if (crashed.has(t)) o = { fail: 'expired', from: new Set([t]) }
    else if (op.kind === 'value') o = { ok: op.x }
    else if (op.kind === 'boom') o = { fail: 'failed', from: new Set([t]) }
    else {
      const ins = task.args.map(run)
      const bad = ins.filter(x => 'fail' in x) as Array<Extract<Outcome, { fail: string }>>
      if (bad.length > 0 && op.kind === 'dep' && !op.pass) {
        // Which failing argument arrives first depends on timing: any of them is right.
        // (An argument whose own origin was open leaves this one open too.)
        const kinds = new Set(bad.map(b => b.fail))
        const open = kinds.size > 1 || bad.some(b => (b as { any?: true }).any)
        o = { fail: bad[0]!.fail, from: new Set(bad.flatMap(b => [...b.from])) }
        if (open) (o as { any?: true }).any = true
      } else
        o = {
          ok: ins.map(x => ('ok' in x ? x.ok : (x as { any?: true }).any ? ANY_KIND : `${x.fail}`)),
        }
    }
    task.outcome = o
    return o
  }
  return tasks.map((_, t) => run(t))
}

/**
 * A failure kind that depends on timing (a `pass` argument that failed with whichever of its own
 * failing arguments arrived first): any kind is right.
 */
const ANY_KIND = Symbol('any failure kind')

/** The model's value against a result: deep equality, where ANY_KIND matches any kind. */
function matches(expected: unknown, got: unknown): boolean {
  if (expected === ANY_KIND) return got === 'failed' || got === 'expired' || got === 'cancelled'
  if (Array.isArray(expected))
    return (
      Array.isArray(got) &&
      got.length === expected.length &&
      expected.every((x, i) => matches(x, got[i]))
    )
  return expected === got
}

const space = new TaskSpace('m', {
  value: (x: number) => x,
  boom() {
    throw new Error('boom')
  },
  dep: (...xs: unknown[]) =>
    xs.map(x =>
      x instanceof TaskCancelled
        ? 'cancelled'
        : x instanceof TaskExpired
          ? 'expired'
          : x instanceof TaskFailure
            ? 'failed'
            : x,
    ),
})

for (const backend of backends) {
  describe(`chaos: model-based property test [${backend.name}]`, function () {
    this.timeout(180_000)

    it('random enqueue / graph / cancel / crash sequences end as the model says', async () => {
      const url = await backend.url()
      let runs = 0
      await fc.assert(
        fc.asyncProperty(fc.array(opArb, { minLength: 1, maxLength: 12 }), async ops => {
          runs++
          const queue = uniqueQueue('model')
          const broker = getBroker(url, queue)
          broker.expose(space)
          const q = broker.queue<typeof space>()
          const ds: Array<Deferred<unknown>> = []
          try {
            for (const op of ops) {
              if (op.kind === 'value') ds.push(await task(q.m.value, { heartrate: 10 })(op.x))
              else if (op.kind === 'boom') ds.push(await task(q.m.boom, { heartrate: 10 })())
              else if (op.kind === 'dep' && ds.length > 0) {
                const args = op.args.map(a => ds[a % ds.length]!)
                ds.push(
                  await task(q.m.dep, { heartrate: 10, onError: op.pass ? 'pass' : 'fail' })(
                    ...(args as never[]),
                  ),
                )
              } else if (op.kind === 'cancel' && ds.length > 0)
                await ds[op.target % ds.length]!.cancel()
            }
            const { backend: b } = await broker.backend()
            for (const op of ops) if (op.kind === 'crash') await b.exchange(queue, 'crashed', [], 1)
            const pool = new WorkerPool(broker, { concurrency: 4, sweepInterval: 20 })
            await pool.start()
            const expected = predict(ops)
            for (const [t, d] of ds.entries()) {
              const e = expected[t]!
              const got = await d.result(15_000).then(
                v => ({ ok: v }) as const,
                (err: unknown) => err as TaskFailure,
              )
              if ('ok' in e) {
                expect(got, `task ${t}`).to.have.property('ok')
                const value = (got as { ok: unknown }).ok
                if (!matches(e.ok, value)) expect(value, `task ${t}`).to.deep.equal(e.ok)
              } else {
                expect(got, `task ${t}`).to.be.instanceOf(TaskFailure)
                const f = got as TaskFailure
                const kind =
                  f instanceof TaskCancelled
                    ? 'cancelled'
                    : f instanceof TaskExpired
                      ? 'expired'
                      : 'failed'
                if (!(e as { any?: true }).any) {
                  expect(kind, `task ${t} kind`).to.equal(e.fail)
                  expect(
                    [...e.from].map(k => ds[k]!.id),
                    `task ${t} origin`,
                  ).to.include(f.taskId)
                }
              }
            }
            await pool.stop({ timeout: 1000 })
          } finally {
            await broker.purge().catch(() => undefined)
            await broker.close()
          }
        }),
        {
          numRuns: Number(process.env.WORQ_MODEL_RUNS ?? 30),
          endOnFailure: true,
          // Replays a reported failure: WORQ_MODEL_SEED=<seed> WORQ_MODEL_PATH=<path>.
          ...(process.env.WORQ_MODEL_SEED ? { seed: Number(process.env.WORQ_MODEL_SEED) } : {}),
          ...(process.env.WORQ_MODEL_PATH ? { path: process.env.WORQ_MODEL_PATH } : {}),
        },
      )
      console.log(`      ${runs} random sequences on ${backend.name} matched the model`)
    })
  })
}
