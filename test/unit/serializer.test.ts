import { expect } from 'chai'
import {
  checkFaithful,
  decodeValue,
  encodeCall,
  encodeValue,
  decodeCall,
} from '../../lib/serializer.js'
import { TaskExpired, TaskFailure } from '../../lib/errors.js'
import { Deferred } from '../../lib/deferred.js'

describe('serializer', () => {
  it('round-trips Dates, Maps, Sets, BigInt, undefined, RegExp and Errors with stack and cause', () => {
    const err = new TypeError('outer', { cause: new Error('inner') })
    const value = {
      d: new Date(5),
      m: new Map([[1, 'a']]),
      s: new Set(['x']),
      b: 1n,
      u: undefined,
      r: /a+/g,
      err,
    }
    const back = decodeValue(encodeValue(value)) as typeof value
    expect(back.d).to.deep.equal(new Date(5))
    expect(back.m.get(1)).to.equal('a')
    expect(back.s.has('x')).to.equal(true)
    expect(back.b).to.equal(1n)
    expect('u' in back).to.equal(true)
    expect(back.r.source).to.equal('a+')
    expect(back.err.name).to.equal('TypeError')
    expect(back.err.stack).to.equal(err.stack)
    expect((back.err.cause as Error).message).to.equal('inner')
  })

  it('revives TaskFailure and its subclasses as themselves', () => {
    const f = new TaskExpired('a.b', 'q', 'id1', 'gone', 2)
    const back = decodeValue(encodeValue([f])) as unknown[]
    expect(back[0]).to.be.instanceOf(TaskExpired)
    expect((back[0] as TaskFailure).message).to.equal(f.message)
  })

  it('refuses what superjson would silently drop or change, naming where it is', () => {
    expect(() => checkFaithful({ a: [1, () => 1] }, 'x', new Set())).to.throw(
      TypeError,
      /x\.a\[1\] is a function/,
    )
    expect(() => checkFaithful({ s: Symbol('k') }, 'x', new Set())).to.throw(
      TypeError,
      /x\.s is a symbol/,
    )
    expect(() => checkFaithful({ [Symbol('k')]: 1 }, 'x', new Set())).to.throw(
      TypeError,
      /symbol key/,
    )
    class P {}
    expect(() => checkFaithful(new Map([['k', new P()]]), 'x', new Set())).to.throw(
      TypeError,
      /class P/,
    )
    const cyclic: Record<string, unknown> = {}
    cyclic.self = cyclic
    expect(() => checkFaithful(cyclic, 'x', new Set())).not.to.throw()
  })

  it('refuses sparse arrays at once (their holes would arrive as null) and subclasses of built-ins', () => {
    const sparse: unknown[] = []
    sparse[1e8] = 1
    expect(() => checkFaithful({ a: sparse }, 'x', new Set())).to.throw(
      TypeError,
      /x\.a is a sparse array \(index 0 is a hole/,
    )
    expect(() => checkFaithful(Object.assign([1], { 2: 3 }), 'x', new Set())).to.throw(
      TypeError,
      /index 1 is a hole/,
    )
    class Bytes extends Uint8Array {}
    expect(() => checkFaithful(new Bytes(2), 'x', new Set())).to.throw(TypeError, /class Bytes/)
  })

  it('a key superjson refuses, in a value that goes through it, is a TypeError naming the path', () => {
    expect(() => encodeValue({ constructor: 1, x: -0 })).to.throw(
      TypeError,
      /result has a key "constructor"/,
    )
    expect(() => encodeValue({ a: { prototype: 1 }, d: new Date(0) })).to.throw(
      TypeError,
      /result\.a has a key "prototype"/,
    )
    expect(decodeValue(encodeValue({ constructor: 1 }))).to.deep.equal({ constructor: 1 }) // plain JSON
  })

  it('sends a Node Buffer as a Buffer', () => {
    const back = decodeValue(encodeValue({ b: Buffer.from('bytes') })) as { b: Buffer }
    expect(Buffer.isBuffer(back.b)).to.equal(true)
    expect(back.b.toString()).to.equal('bytes')
  })

  it('encodes a call with distinct Deferred references and decodes them through a resolver', () => {
    const host = {
      epoch: 0,
      open: () => undefined,
      status: async () => null,
      cancel: async () => false,
      info: async () => undefined,
      waitStarted: () => undefined,
      waitEnded: () => undefined,
      store: {} as never, // the codec never reads it
    }
    const a = new Deferred(host, 'q', 'f', 'A')
    const b = new Deferred(host, 'other', 'f', 'B')
    const { payload, deps } = encodeCall([a, { list: [b, a] }])
    expect(deps).to.deep.equal([
      { queue: 'q', id: 'A' },
      { queue: 'other', id: 'B' },
    ])
    expect(decodeCall(payload, i => `v${i}`)).to.deep.equal(['v0', { list: ['v1', 'v0'] }])
  })

  it('a Deferred in a result is refused', () => {
    const host = {
      epoch: 0,
      open: () => undefined,
      status: async () => null,
      cancel: async () => false,
      info: async () => undefined,
      waitStarted: () => undefined,
      waitEnded: () => undefined,
      store: {} as never, // the codec never reads it
    }
    expect(() => encodeValue({ d: new Deferred(host, 'q', 'f', 'A') })).to.throw(
      TypeError,
      /Deferred/,
    )
  })
})

describe('serializer fast path', () => {
  it('writes plain JSON exactly as superjson does, and reads superjson output', async () => {
    const { SuperJSON } = await import('superjson')
    const sj = new SuperJSON()
    for (const v of [1, 'x', null, true, [1, [2, { a: 'b' }]], { k: [], n: { m: 1.5 } }]) {
      expect(encodeValue(v)).to.equal(sj.stringify(v))
      expect(decodeValue(sj.stringify(v))).to.deep.equal(v)
    }
    for (const v of [-0, NaN, { u: undefined }, { d: new Date(1) }, 2n]) {
      expect(decodeValue(encodeValue(v))).to.deep.equal(v)
    }
    expect(Object.is(decodeValue(encodeValue(-0)), -0)).to.equal(true)
  })
})
