import { expect } from 'chai'
import { getBroker, TaskFailure, WorkerPool, type TaskContext } from '../../lib/index.js'
import { backends } from '../helpers/backends.js'
import { uniqueQueue } from '../helpers/util.js'

/** An object every read of which throws: its traps, its prototype, its keys. */
function hostile(): object {
  const trap = (what: string) => () => {
    throw new Error(what)
  }
  return new Proxy(
    {},
    { get: trap('get'), ownKeys: trap('ownKeys'), getPrototypeOf: trap('getPrototypeOf') },
  )
}

for (const backend of backends) {
  describe(`chaos: hostile values [${backend.name}]`, function () {
    this.timeout(60_000)

    it('cyclic, deep, huge and unserializable values, unknown and prototype names: refused at the call or failed as a task; the worker goes on', async () => {
      const url = await backend.url()
      const broker = getBroker(url, uniqueQueue('values'), { maxPayloadBytes: 1 << 20 })
      broker
        .expose(function echo(x: unknown) {
          return x
        })
        .expose(function huge(n: number) {
          return 'x'.repeat(n)
        })
        .expose(function cyclic() {
          const o: Record<string, unknown> = { a: 1 }
          o.self = o
          return o
        })
        .expose(function bad(kind: string) {
          class Point {
            x = 1
          }
          const values: Record<string, () => unknown> = {
            function: () => () => 1,
            symbol: () => Symbol('s'),
            'nested-function': () => ({ a: [1, { f: () => 1 }] }),
            'class-instance': () => new Point(),
            'map-of-functions': () => new Map([['f', () => 1]]),
            promise: () => ({ p: Promise.resolve(1) }),
            'throwing-getter': () => ({
              get x() {
                throw new Error('getter')
              },
            }),
            'throwing-toJSON': () => ({
              toJSON() {
                throw new Error('toJSON')
              },
            }),
            'proxy-throwing-ownKeys': () =>
              new Proxy(
                {},
                {
                  ownKeys() {
                    throw new Error('ownKeys')
                  },
                },
              ),
            'proxy-throwing-everything': hostile,
            'throwing-then': () => ({
              get then() {
                throw new Error('then')
              },
            }),
          }
          return values[kind]!()
        })
        .expose(function raise(kind: string) {
          const cyclic: Record<string, unknown> = {}
          cyclic.self = cyclic
          const unnamed = new Error('unnamed')
          Object.defineProperty(unnamed, 'name', {
            get() {
              throw new Error('name')
            },
          })
          const thrown: Record<string, () => unknown> = {
            proxy: hostile,
            'no-prototype': () => Object.create(null),
            'throwing-name': () => unnamed,
            'cyclic-cause': () => new Error('with a cause', { cause: cyclic }),
            'proxy-cause': () => new Error('with a cause', { cause: hostile() }),
          }
          if (kind === 'rejected-proxy') return Promise.reject(hostile())
          throw thrown[kind]!()
        })
        .expose(function report(this: TaskContext) {
          try {
            this.progress(hostile())
          } catch (err) {
            return (err as Error).name
          }
          return 'sent'
        })
      const pool = new WorkerPool(broker, { concurrency: 2 })
      const q = broker.queue()
      let tried = 0
      try {
        await pool.start()
        // A cyclic argument travels as a cycle (superjson keeps referential equality).
        const cyc: Record<string, unknown> = { name: 'loop' }
        cyc.self = cyc
        const back = (await (await q.echo(cyc)).result(10_000)) as Record<string, unknown>
        tried++
        expect(back.self).to.equal(back)
        const cycResult = (await (await q.cyclic()).result(10_000)) as Record<string, unknown>
        tried++
        expect(cycResult.self).to.equal(cycResult)
        // Arguments over the payload limit are refused at the call; nothing is enqueued.
        const tooBig = await q.echo('y'.repeat(2 << 20)).catch((e: unknown) => e)
        tried++
        expect(tooBig).to.have.property('code', 'ERR_WORQ_PAYLOAD_TOO_LARGE')
        // A result over the limit fails its task, saying so.
        const big = await q.huge(2 << 20)
        tried++
        const err = await big.result(10_000).catch((e: unknown) => e)
        expect(err).to.be.instanceOf(TaskFailure)
        expect((err as TaskFailure).remote.name).to.equal('PayloadTooLarge')
        // Very deep arguments: refused at the call or failed as a task, never a crash.
        let deep: unknown = 0
        for (let i = 0; i < 20_000; i++) deep = [deep]
        const deepCall = await q
          .echo(deep)
          .then(d => d!.result(10_000))
          .catch((e: unknown) => e)
        tried++
        expect(deepCall).to.be.instanceOf(Error)
        // Results that cannot be sent faithfully fail their task, saying why.
        const kinds = [
          'function',
          'symbol',
          'nested-function',
          'class-instance',
          'map-of-functions',
          'promise',
          'throwing-getter',
          'throwing-toJSON',
          'proxy-throwing-ownKeys',
          'proxy-throwing-everything',
          'throwing-then',
        ]
        for (const kind of kinds) {
          const e = await (await q.bad(kind)).result(10_000).catch((x: unknown) => x)
          tried++
          expect(e, kind).to.be.instanceOf(TaskFailure)
          expect((e as TaskFailure).remote.name, kind).to.equal('UnserializableResult')
          expect((e as TaskFailure).remote.message, kind).to.match(/cannot be sent faithfully/)
        }
        // Thrown values that cannot be read (their traps, getters or conversions throw) fail
        // their own task; so does a progress value that cannot be sent, as a TypeError to it.
        for (const kind of [
          'proxy',
          'no-prototype',
          'throwing-name',
          'cyclic-cause',
          'proxy-cause',
          'rejected-proxy',
        ]) {
          const e = await (await q.raise(kind)).result(10_000).catch((x: unknown) => x)
          tried++
          expect(e, kind).to.be.instanceOf(TaskFailure)
          expect((e as TaskFailure).remote.name, kind).to.be.oneOf(['NonError', 'Error'])
        }
        expect(await (await q.report()).result(10_000)).to.equal('TypeError')
        tried++
        // Names no worker exposes, prototype walks included, fail remotely as NoSuchTask.
        const untyped = q as unknown as Record<string, Record<string, () => Promise<unknown>>>
        for (const path of [
          ['nope', 'nope'],
          ['__proto__', 'polluted'],
          ['constructor', 'prototype'],
          ['toString', 'call'],
          ['echo', 'constructor'],
        ]) {
          const d = (await untyped[path[0]!]![path[1]!]!()) as {
            result(ms: number): Promise<unknown>
          }
          const e = await d.result(10_000).catch((x: unknown) => x)
          tried++
          expect(e, path.join('.')).to.be.instanceOf(TaskFailure)
          expect((e as TaskFailure).remote.name, path.join('.')).to.equal('NoSuchTask')
        }
        expect(({} as Record<string, unknown>).polluted).to.equal(undefined)
        // The worker is still there.
        expect(await (await q.echo('still here')).result(10_000)).to.equal('still here')
        console.log(`      ${tried} hostile values tried on ${backend.name}`)
      } finally {
        await pool.stop({ timeout: 1000 })
        await broker.close()
      }
    })
  })
}
