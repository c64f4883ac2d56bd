import { expect } from 'chai'
import { Redis } from 'ioredis'
import { getBroker, WorkerPool, type Deferred } from '../../lib/index.js'
import { readOutcome } from '../../lib/outcome.js'
import { redisUrl } from '../helpers/redis-server.js'
import { uniqueQueue } from '../helpers/util.js'

describe('chaos: hostile input on the wire', function () {
  this.timeout(60_000)

  it('malformed records written straight into the queue fail their task; the worker and other tasks go on', async () => {
    const url = await redisUrl()
    const redis = new Redis(url)
    const queue = uniqueQueue('fuzz')
    const broker = getBroker(url, queue)
    broker.expose(function echo(x: unknown) {
      return x
    })
    const pool = new WorkerPool(broker, { concurrency: 4, sweepInterval: 100 })
    const errors: Error[] = []
    pool.on('pool:error', e => errors.push(e))
    const key = (s: string) => `worq:{${queue}}:${s}`
    const header = (extra = '') =>
      `{"n":"echo","r":60000,"h":1000,"a":1,"b":["fixed",0,0,0],"u":0,"e":0,"g":"x"${extra}}`
    const records: Record<string, string> = {
      garbage: '\u0000\u0001not a record',
      'bad-state': 'Z0:' + header() + '\n{"json":[1]}',
      'bad-header': 'E0:{not json\n{"json":[1]}',
      truncated: 'E0:' + header().slice(0, 20),
      'no-newline': 'E0:' + header(),
      'bad-payload': 'E0:' + header() + '\nnot json at all',
      'payload-not-list': 'E0:' + header() + '\n{"json":{"a":1}}',
      'unknown-class':
        'E0:' + header() + '\n{"json":[{}],"meta":{"values":{"0":[["class","Evil"]]}}}',
      'proto-name': 'E0:' + header().replace('"echo"', '"__proto__"') + '\n{"json":[1]}',
      'constructor-name': 'E0:' + header().replace('"echo"', '"constructor"') + '\n{"json":[1]}',
      'deep-payload': 'E0:' + header() + '\n{"json":[' + '['.repeat(5000) + ']'.repeat(5000) + ']}',
    }
    const ids = Object.keys(records)
    try {
      // Written before the pool starts: a raw LPUSH wakes no blocked worker (enqueue.lua does that).
      for (const [id, rec] of Object.entries(records)) await redis.set(key(`t:${id}`), rec)
      await redis.lpush(key('wait'), 'no-record-at-all', ...ids)
      const t0 = Date.now()
      await pool.start()
      const good: Array<Deferred<unknown>> = await Promise.all(
        [1, 2, 3].map(n => broker.queue().echo(n)),
      )
      expect(await Promise.all(good.map(d => d.result(10_000)))).to.deep.equal([1, 2, 3])
      console.log(`      the good tasks finished ${Date.now() - t0} ms after the pool started`)
      // Every hostile record ended as a failed task whose message says why; none is left live.
      const { backend } = await broker.backend()
      const failures: Record<string, string> = {}
      for (const id of ids) {
        const state = await backend.status(queue, id)
        expect(state?.status, id).to.equal('failed')
        const read = readOutcome(state!.outcome!)
        if (read.ok) expect.fail(`${id} completed`)
        failures[id] = `${read.error.remote.name}: ${read.error.remote.message.slice(0, 70)}`
      }
      expect(failures['proto-name']).to.match(/^NoSuchTask/)
      expect(failures['constructor-name']).to.match(/^NoSuchTask/)
      expect(failures['bad-header']).to.match(/^BadMessage/)
      expect(failures['unknown-class']).to.match(/^BadMessage/)
      expect(errors.map(e => e.message)).to.deep.equal([])
      const lines = Object.entries(failures).map(([id, f]) => `${id} → ${f}`)
      console.log(
        `      ${ids.length + 1} hostile records tried, each a failed task:\n        ${lines.join('\n        ')}`,
      )
    } finally {
      await pool.stop({ timeout: 1000 })
      await broker.close()
      redis.disconnect()
    }
  })
})
