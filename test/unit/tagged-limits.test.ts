/**
 * The limits on reading a tagged value (lib/http/tagged-limits.ts): what SuperJSON.serialize
 * writes is read back as it was, shared references and all; each limit takes its largest value
 * and refuses one more; and whatever a hostile `meta` holds, the answer is a value or a 4xx.
 */
import { expect } from 'chai'
import fc from 'fast-check'
import { SuperJSON } from 'superjson'
import { HttpError } from '../../lib/http/errors.js'
import {
  MAX_BIGINT_CHARS,
  MAX_PATH_SEGMENTS,
  MAX_REPEATED,
  MAX_SET_STEPS,
} from '../../lib/http/tagged-limits.js'
import type { TaggedValue } from '../../lib/http/types.js'
import { fromWire, toWire } from '../../lib/http/values.js'

/** Inputs tried per property (as test/unit/http-fuzz.test.ts). */
const RUNS = 20_000

/** `fromWire` of `{ $superjson: { json, meta } }`: its value, or the HttpError it threw. */
function read(json: unknown, meta: unknown): unknown {
  try {
    return fromWire({ $superjson: { json, meta } }, 'args[0]')
  } catch (err) {
    if (!(err instanceof HttpError)) throw err
    expect(err.status).to.equal(400)
    return err
  }
}

function code(v: unknown): string | undefined {
  return v instanceof HttpError ? v.code : undefined
}

/** What superjson carries, without what it does not bring back as it was (NaN keys, -0, …). */
const carried = fc.anything({
  maxDepth: 3,
  withBigInt: true,
  withDate: true,
  withMap: true,
  withSet: true,
  withNullPrototype: false,
  withBoxedValues: false,
  withObjectString: false,
  withSparseArray: false,
  withTypedArray: false,
  key: fc.string().filter(k => !['__proto__', 'constructor', 'prototype'].includes(k)),
})

describe('http: limits on reading tagged values', function () {
  this.timeout(120_000)

  it(`reads back what SuperJSON.serialize writes, shared references included (${RUNS / 4} values)`, () => {
    const plain = new SuperJSON()
    fc.assert(
      fc.property(carried, v => {
        // The same value four times: beside itself, in a Set, as a Map's value, in an object.
        const graph = [v, new Set([v]), new Map([['k', v]]), { again: v }]
        const wire = toWire(graph) as TaggedValue
        let expected: unknown
        try {
          expected = plain.deserialize(wire.$superjson as never)
        } catch {
          // What superjson cannot read back itself (a Set in a shared Set, at times) is a 400.
          expect(read(wire.$superjson.json, wire.$superjson.meta)).to.be.instanceOf(HttpError)
          return
        }
        // As superjson reads it (not always the value it wrote: a Set as a Map's key, at times),
        // shared references included.
        const back = fromWire(wire, 'args[0]') as typeof graph
        expect(back).to.deep.equal(expected)
        const shared = (g: unknown) => {
          const [first, set, map, object] = g as [unknown, Set<unknown>, Map<string, unknown>, any]
          return [[...set][0] === first, map.get('k') === first, object.again === first]
        }
        expect(shared(back)).to.deep.equal(shared(expected))
        if (typeof v === 'object' && v !== null) expect(shared(back)).to.include(true)
      }),
      { numRuns: RUNS / 4 },
    )
  })

  it(`a BigInt of ${MAX_BIGINT_CHARS} characters is read; one more is a 400 naming the limit; typed arrays are made of items`, () => {
    const at = (chars: number) => read('9'.repeat(chars), { values: ['bigint'], v: 1 })
    expect(at(MAX_BIGINT_CHARS)).to.equal(BigInt('9'.repeat(MAX_BIGINT_CHARS)))
    const over = at(MAX_BIGINT_CHARS + 1) as HttpError
    expect(over.code).to.equal('ERR_WORQ_HTTP_VALUE_LIMIT')
    expect(over.message).to.equal(
      `args[0] has a BigInt at "" of ${MAX_BIGINT_CHARS + 1} characters; the API takes BigInts of at most ${MAX_BIGINT_CHARS} characters: send a larger number as a string and convert it in the task`,
    )
    // An array would be read as its text: BigInt(['999…']) is BigInt('999…').
    expect(code(read(['9'.repeat(5000)], { values: ['bigint'] }))).to.equal(
      'ERR_WORQ_HTTP_VALUE_LIMIT',
    )
    // A typed array is made from its items, never from a length (2e9 bytes from a few).
    const typed = (json: unknown) => read(json, { values: [['typed-array', 'Uint8Array']], v: 1 })
    expect(typed([1, 2])).to.deep.equal(new Uint8Array([1, 2]))
    for (const json of [2e9, '2000000000', { length: 2e9 }]) {
      const r = typed(json) as HttpError
      expect(r.message, JSON.stringify(json)).to.match(
        /has a Uint8Array at "" that is not an array/,
      )
    }
  })

  it(`a path of ${MAX_PATH_SEGMENTS} segments is read; one more is a 400 naming the limit`, () => {
    const nested = (depth: number) => {
      let v: unknown = new Date(0)
      for (let i = 1; i < depth; i++) v = [v]
      return v
    }
    const deepest = nested(MAX_PATH_SEGMENTS + 1) // the Date at a path of 64 segments
    expect(fromWire(toWire(deepest), 'args[0]')).to.deep.equal(deepest)
    const { json, meta } = (toWire(nested(MAX_PATH_SEGMENTS + 2)) as TaggedValue).$superjson
    const over = read(json, meta) as HttpError
    expect(over.code).to.equal('ERR_WORQ_HTTP_VALUE_LIMIT')
    expect(over.message).to.match(/a path of more than 64 segments .* at most 64/)
    // Segments added up across nested annotations count too.
    const split = {
      values: ['map', { ['0.'.repeat(40) + '1']: ['set', { ['0.'.repeat(30) + '0']: ['Date'] }] }],
    }
    expect(code(read([], split))).to.equal('ERR_WORQ_HTTP_VALUE_LIMIT')
  })

  it(`shared references may walk ${MAX_SET_STEPS} elements of Sets and Maps; one more is a 400`, () => {
    // 1 001 items, and references to the last one: 1 000 steps each.
    const at = (references: number) =>
      read([Array.from({ length: 1001 }, () => ({})), {}], {
        values: { 0: ['set'] },
        referentialEqualities: { 1: Array(references).fill('0.1000') },
        v: 1,
      })
    expect(at(MAX_SET_STEPS / 1000)).to.be.an('array')
    const over = at(MAX_SET_STEPS / 1000 + 1) as HttpError
    expect(over.code).to.equal('ERR_WORQ_HTTP_VALUE_LIMIT')
    expect(over.message).to.match(/at most 1000000 elements of them in all/)
    // Through a Map (row, then key or value), added up over paths.
    const map = (references: number) =>
      read([Array.from({ length: 1001 }, (_, i) => [i, {}]), {}], {
        values: { 0: ['map'] },
        referentialEqualities: { 1: Array(references).fill('0.1000.1') },
        v: 1,
      })
    expect(map(MAX_SET_STEPS / 1000)).to.be.an('array')
    expect(code(map(MAX_SET_STEPS / 1000 + 1))).to.equal('ERR_WORQ_HTTP_VALUE_LIMIT')
  })

  it('shared references that unfold (nested pairs doubled at each level: 2^40 for JSON.stringify), cycle or nest too deep are 400s', () => {
    /** Levels of [x, x]: the json holds one copy, the references make the second. */
    const pairs = (levels: number) => {
      let json: unknown = 'leaf'
      const refs: Record<string, string[]> = {}
      for (let i = 0; i < levels; i++) json = [json, 0]
      for (let i = 0; i < levels; i++)
        refs[[...Array(i).fill('0'), '0'].join('.')] = [[...Array(i).fill('0'), '1'].join('.')]
      return read(json, { referentialEqualities: refs, v: 1 })
    }
    expect(code(pairs(10))).to.equal(undefined) // 2^11 values written out: taken
    const over = pairs(40) as HttpError
    expect(over.code).to.equal('ERR_WORQ_HTTP_VALUE_LIMIT')
    expect(over.message).to.match(
      /written out each time they appear, would make it more than 1000000 values and characters larger than sent/,
    )
    expect(MAX_REPEATED).to.equal(1_000_000)
    // A long text shared many times counts with its length, held or not; a BigInt with its digits.
    const long = 'x'.repeat(10_000)
    for (const shared of [long, { long }]) {
      const many = read([shared, ...Array(200).fill(0)], {
        referentialEqualities: { 0: Array.from({ length: 200 }, (_, i) => String(i + 1)) },
        v: 1,
      })
      expect(code(many), typeof shared).to.equal('ERR_WORQ_HTTP_VALUE_LIMIT')
    }
    const digits = read(['9'.repeat(2000), ...Array(1000).fill(0)], {
      values: { 0: ['bigint'] },
      referentialEqualities: { 0: Array.from({ length: 1000 }, (_, i) => String(i + 1)) },
      v: 1,
    })
    expect(code(digits)).to.equal('ERR_WORQ_HTTP_VALUE_LIMIT')
    // A value that contains itself: JSON.stringify and a plain-JSON check go round it.
    const cycle = read([[0, 0]], { referentialEqualities: [['0.0', '0.1']], v: 1 }) as HttpError
    expect(cycle.message).to.match(/contains itself .* no cyclic values/)
    // A chain through references deeper than a body may nest.
    const chain = Array.from({ length: 100 }, () => [0])
    const deep = read(chain, {
      referentialEqualities: Object.fromEntries(
        chain.slice(1).map((_, i) => [`${i + 1}`, [`${i}.0`]]),
      ),
      v: 1,
    }) as HttpError
    expect(deep.message).to.match(/nests deeper than 64 levels through its shared references/)
  })

  it('a value annotated inside another, outside its own annotations, is refused (superjson walked the Set each time)', () => {
    const set = [Array.from({ length: 5 }, (_, i) => String(i))]
    for (const values of [
      { 0: ['set'], '0.4': ['bigint'] },
      { '0.4': ['bigint'], 0: ['set'] },
      { 0: ['set', { 4: ['bigint'] }], '0.4': ['bigint'] },
    ]) {
      const r = read(set, { values, v: 1 }) as HttpError
      expect(r, JSON.stringify(values)).to.be.instanceOf(HttpError)
      expect(r.message).to.match(/annotates a value inside another annotated value/)
    }
    // Among its own annotations it is what superjson writes.
    expect(read(set, { values: { 0: ['set', { 4: ['bigint'] }] }, v: 1 })).to.deep.equal([
      new Set(['0', '1', '2', '3', 4n]),
    ])
  })

  it(`hostile meta: ${RUNS} annotation trees and shared references, each a value or a 400`, () => {
    const segment = fc.constantFrom('0', '1', '2', 'a', '', '\\.', '\\\\', '\\x', '1e9', '-1')
    const path = fc.array(segment, { minLength: 1, maxLength: 4 }).map(s => s.join('.'))
    const type = fc.constantFrom<unknown>(
      'bigint',
      'set',
      'map',
      'Date',
      'undefined',
      'number',
      'Error',
      ['typed-array', 'BigInt64Array'],
      ['typed-array', 'Uint8Array'],
      ['custom', 'x'],
      5,
    )
    const tree: fc.Arbitrary<unknown> = fc.letrec(tie => ({
      node: fc.oneof(
        { depthSize: 'small' },
        fc.tuple(type),
        fc.tuple(type, fc.dictionary(path, tie('node'), { maxKeys: 3 })),
        fc.dictionary(path, tie('node'), { maxKeys: 3 }),
        fc.anything({ maxDepth: 1 }),
      ),
    })).node
    const refs = fc.oneof(
      fc.dictionary(path, fc.array(path, { maxLength: 3 }), { maxKeys: 3 }),
      fc.tuple(fc.array(path, { maxLength: 2 })),
      fc.anything({ maxDepth: 1 }),
    )
    const json = fc.oneof(
      fc.jsonValue({ maxDepth: 3 }),
      fc.constant([['9'.repeat(3000), { a: ['1'] }], '2']),
    )
    const meta = fc.record(
      { values: tree, referentialEqualities: refs, v: fc.constantFrom(1, 0, '1', null) },
      { requiredKeys: [] },
    )
    fc.assert(
      fc.property(json, meta, (j, m) => {
        read(j, m)
      }),
      { numRuns: RUNS },
    )
  })
})
