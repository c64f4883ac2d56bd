/**
 * What the hostile-input tests share (test/chaos/hostile.test.ts on Redis records,
 * test/chaos/postgres-hostile.test.ts on PostgreSQL rows): the failures a hostile task may end in,
 * how each task's outcome is read back, and the mutations of a real payload the fuzz makes.
 */
import { expect } from 'chai'
import fc from 'fast-check'
import { getBroker, type Broker, type Deferred } from '../../lib/index.js'
import { readOutcome } from '../../lib/outcome.js'
import { until } from './util.js'

/** Failures a hostile task may end in: each names what is wrong with it. */
export const CLEAR = ['BadMessage', 'NoSuchTask', 'UnserializableResult', 'PayloadTooLarge']

/** A payload's superjson meta naming custom type `name` for argument 0. */
export const custom = (name: string) => `"meta":{"values":{"0":[["custom","${name}"]]}}`

/** A fresh object: `polluted` set on it means something reached Object.prototype. */
export const polluted = () =>
  ({}) as Record<string, unknown> as { polluted?: unknown } & Record<string, unknown>

/** Each id's outcome as `completed` or `<remote error name>: <message>` (or why there is none). */
export async function outcomesOf(
  broker: Broker,
  queue: string,
  ids: string[],
): Promise<Record<string, string>> {
  const { backend } = await broker.backend()
  const out: Record<string, string> = {}
  for (const id of ids) {
    const state = await backend.status(queue, id).catch((e: Error) => e)
    if (state instanceof Error) out[id] = `status() threw ${state.name}: ${state.message}`
    else if (!state?.outcome) out[id] = `no outcome (${state?.status ?? 'gone'})`
    else {
      const read = readOutcome(state.outcome)
      out[id] = read.ok
        ? 'completed'
        : `${read.error.remote.name}: ${read.error.remote.message.slice(0, 90)}`
    }
  }
  return out
}

/** The good calls made beside the hostile ones all complete, the last returning 'last'. */
export async function expectGood(good: Array<Deferred<unknown>>): Promise<void> {
  const values = await Promise.all(good.map(d => d.result(10_000)))
  expect(values.at(-1)).to.equal('last')
}

/**
 * Mutations of a payload `b`: replace, insert or delete characters (`text` makes the replacing
 * strings).
 */
export function payloadMutations(
  text: fc.Arbitrary<string> = fc.string({ minLength: 1, maxLength: 4 }),
): fc.Arbitrary<(b: string) => string> {
  const token = fc.constantFrom('{', '}', '[', ']', '"', ',', ':', '\\', 'null', '-1', '1e999')
  return fc.oneof(
    fc.tuple(fc.nat(), text).map(
      ([i, s]) =>
        (b: string) =>
          b.slice(0, i % b.length) + s + b.slice((i % b.length) + s.length),
    ),
    fc.tuple(fc.nat(), token).map(
      ([i, s]) =>
        (b: string) =>
          b.slice(0, i % b.length) + s + b.slice(i % b.length),
    ),
    fc.tuple(fc.nat(), fc.nat({ max: 20 })).map(
      ([i, k]) =>
        (b: string) =>
          b.slice(0, i % b.length) + b.slice((i % b.length) + k),
    ),
  )
}

/**
 * Counts the kind of each outcome of `got` in `tally`; each that did not complete must be one of
 * {@link CLEAR}, with a message (`inputs` names what the task was given, for the failure's text).
 */
export function expectCompletedOrClear(
  got: Record<string, string>,
  inputs: Record<string, string>,
  tally: Map<string, number>,
): void {
  for (const [id, o] of Object.entries(got)) {
    const kind = o.split(':')[0]!
    tally.set(kind, (tally.get(kind) ?? 0) + 1)
    if (kind !== 'completed')
      expect(o, `${id}: ${inputs[id]!.slice(0, 200)}`).to.match(
        new RegExp(`^(${CLEAR.join('|')}): .{10,}`),
      )
  }
}

/**
 * Writes each hostile entry (`write`), with a good call (`good`) after every fourth and one last
 * ('last'), so that a worker reserves both kinds in the same exchanges; returns the good Deferreds.
 */
export async function interleave(
  entries: Record<string, string>,
  write: (id: string, value: string) => Promise<void>,
  good: (arg: string) => Promise<Deferred<unknown>>,
): Promise<Array<Deferred<unknown>>> {
  const made: Array<Deferred<unknown>> = []
  let n = 0
  for (const [id, value] of Object.entries(entries)) {
    await write(id, value)
    if (n++ % 4 === 0) made.push(await good(`good-${n}`))
  }
  made.push(await good('last'))
  return made
}

/**
 * Resolves once `live()` (the ids of the hostile tasks still live) is empty; throws after `ms`,
 * naming those left. The tests' own records and rows notify nobody: this polls (`until`).
 */
export function settledWithin(live: () => Promise<string[]>, ms = 15_000): Promise<void> {
  let left: string[] = []
  return until(
    async () => (left = await live()).length === 0,
    ms,
    () => `${left.join(', ')} to end`,
  )
}

/** A broker of `queue` at `url` whose workers expose echo (returns its argument) and len. */
export function echoBroker(url: string, queue: string, maxPayloadBytes: number): Broker {
  return getBroker(url, queue, { maxPayloadBytes })
    .expose(function echo(x: unknown) {
      return x
    })
    .expose(function len(x: string) {
      return x.length
    })
}
