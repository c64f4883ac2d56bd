/**
 * Bad option values, as real `worq` processes against the test Redis: each is a usage error
 * (exit code 2) told in one line that names the flag, never a duration that overflows Node's
 * timers (a timer past 2^31 − 1 ms fires after 1 ms).
 */
import { expect } from 'chai'
import { getBroker, WorkerPool, type Broker } from '../../lib/index.js'
import { w } from '../fixtures/worker-tasks.js'
import { killAll, TASKS, worqRun, worqRunAll } from '../helpers/cli.js'
import { redisUrl } from '../helpers/redis-server.js'
import { uniqueQueue } from '../helpers/util.js'

type Case = { args: string[]; flag: RegExp }

/** Runs every case; each must exit 2 and name its flag on its first line, with no stack. */
async function expectUsage(cases: Case[]): Promise<void> {
  const results = await worqRunAll(cases)
  results.forEach((r, i) => {
    const { args, flag } = cases[i]!
    const what = `worq ${args.join(' ')}: ${r.out}`
    expect(r.code, what).to.equal(2)
    expect(r.out.split('\n')[0], what).to.match(flag)
    expect(r.out, what).to.not.match(/^\s+at /m)
    expect(r.out.split('\n').length, what).to.be.at.most(2) // the line, "(add --help for usage)"
  })
}

describe('cli: bad option values are usage errors that name the flag', function () {
  this.timeout(120_000) // CLI processes, each a cold start
  let url: string
  let queue: string
  let broker: Broker

  before(async () => {
    url = await redisUrl()
    queue = uniqueQueue('cliusage')
    broker = getBroker(url, queue)
  })
  after(async () => {
    killAll()
    await broker.purge()
    await broker.close()
  })

  it('a duration past 2147483647 ms (which overflowed Node timers: --wait waited 1 ms) exits 2, on every duration flag', async () => {
    const huge = '3000000000'
    const call = ['call', url, 'w.add', '1', '2', '-q', queue]
    const worker = ['worker', url, '--tasks', TASKS, '-q', queue]
    await expectUsage([
      { args: [...call, '--wait', huge], flag: /'-w, --wait <ms>'.*Expected .* to 2147483647/ },
      { args: [...call, '--timeout', huge], flag: /'--timeout <ms>'/ },
      { args: [...call, '--heartrate', huge], flag: /'--heartrate <ms>'/ },
      { args: [...worker, '--shutdown-timeout', huge], flag: /'--shutdown-timeout <ms>'/ },
      { args: [...worker, '--sweep-interval', huge], flag: /'--sweep-interval <ms>'/ },
      { args: [...worker, '--sweep-interval', '1e20'], flag: /'--sweep-interval <ms>'/ },
      { args: [...worker, '--kill-grace', huge], flag: /'--kill-grace <ms>'/ },
      { args: [...worker, '--heartrate', huge], flag: /'--heartrate <ms>'/ },
      { args: [...call, '--wait', ''], flag: /'-w, --wait <ms>'/ }, // Number('') is 0
    ])
  })

  it('the longest duration, 2147483647 ms, is taken', async () => {
    const pool = new WorkerPool(broker)
    broker.expose(w)
    await pool.start()
    try {
      const max = '2147483647'
      const r = await worqRun([
        'call',
        url,
        'w.add',
        '1',
        '2',
        '-q',
        queue,
        '--wait',
        max,
        '--timeout',
        max,
        '--heartrate',
        max,
      ])
      expect(r).to.deep.equal({ code: 0, out: '3' })
    } finally {
      await pool.stop()
    }
  })
})
