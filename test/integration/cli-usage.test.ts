/**
 * Bad option values, as real `worq` processes against the test Redis: each is a usage error
 * (exit code 2) told in one line that names the flag, never a stack trace, an exit code 1, or a
 * duration that overflows Node's timers (a timer past 2^31 − 1 ms fires after 1 ms).
 */
import { expect } from 'chai'
import { getBroker, WorkerPool, type Broker } from '../../lib/index.js'
import { w } from '../fixtures/worker-tasks.js'
import { workerCommand } from '../../lib/cli/worker.js'
import { killAll, TASKS, worq, worqRun, worqRunAll, type WorqOptions } from '../helpers/cli.js'
import { redisUrl } from '../helpers/redis-server.js'
import { uniqueQueue } from '../helpers/util.js'

type Case = { args: string[]; flag: RegExp } & WorqOptions

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
  this.timeout(120_000) // dozens of CLI processes, each a cold start
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

  it('--concurrency past 10000 and --processes past 256 (which had no maximum) exit 2 naming the flag', async () => {
    // A URL refused before anything starts: without the maximum, no child process is spawned
    // (the command fails with exit code 1 instead).
    const bad = ['worker', 'redis://:99999', '--tasks', TASKS, '-q', queue]
    await expectUsage([
      {
        args: [...bad, '--concurrency', '10001'],
        flag: /'-c, --concurrency <n>'.*Expected an integer from 1 to 10000, got "10001"/,
      },
      { args: [...bad, '-c', '1e9'], flag: /'-c, --concurrency <n>'.* to 10000/ },
      {
        args: [...bad, '--processes', '257'],
        flag: /'-p, --processes <n>'.*Expected an integer from 1 to 256, got "257"/,
      },
      { args: [...bad, '-p', '100000'], flag: /'-p, --processes <n>'/ },
    ])
    // The largest are taken (256 child processes are not started here: the parser is the check).
    const p = worq(['worker', url, '--tasks', TASKS, '-q', queue, '--concurrency', '10000'])
    await p.line(/worker:start .*concurrency 10000/)
    p.proc.kill('SIGTERM')
    expect((await p.exited).code).to.equal(0)
    const processes = workerCommand(() => undefined).options.find(o => o.long === '--processes')!
    expect(processes.parseArg!('256', undefined)).to.equal(256)
    const help = await worqRun(['worker', '--help'])
    expect(help.out).to.match(/tasks run at once, 1 to 10000/)
    expect(help.out).to.match(/child processes, 1 to 256/)
  })

  it('--max-memory-per-child in bytes (536870912: 512 TiB as MB, so no limit) was taken: exit 2 naming the flag', async () => {
    const bad = ['worker', 'redis://:99999', '--tasks', TASKS, '-q', queue, '-p', '1']
    await expectUsage([
      {
        args: [...bad, '--max-memory-per-child', '536870912'],
        flag: /'--max-memory-per-child <mb>'.*Expected an integer from 16 to 1048576, got "536870912"/,
      },
      {
        args: [...bad, '--max-tasks-per-child', '9007199254740992'],
        flag: /'--max-tasks-per-child <n>'.*Expected an integer from 1 to 9007199254740991/,
      },
    ])
    const option = (long: string) =>
      workerCommand(() => undefined).options.find(o => o.long === long)!
    expect(option('--max-memory-per-child').parseArg!('1048576', undefined)).to.equal(1048576)
    expect(() => option('--max-memory-per-child').parseArg!('1048577', undefined)).to.throw(
      /from 16 to 1048576/,
    )
    const help = await worqRun(['worker', '--help'])
    expect(help.out).to.match(/heap limit in MB, 16 to 1048576/)
  })

  it('a bad --queue exits 2 naming --queue on every command (the library refused it: exit 1)', async () => {
    const bad = ['--queue', 'bad name']
    const id = ['some-id']
    await expectUsage(
      [
        ['info', url],
        ['tasks', url],
        ['task', url, ...id],
        ['cancel', url, ...id],
        ['call', url, 'w.add', '1', '--wait', '0'],
        ['pause', url],
        ['resume', url],
        ['schedules', url],
        ['purge', url, '--yes'],
        ['worker', url, '--tasks', TASKS],
        ['dashboard', url, '--port', '0'],
      ].map(args => ({ args: [...args, ...bad], flag: /'-q, --queue <name>'.*queue name/ })),
    )
  })

  it('values the library refuses exit 2 naming the flag, not the API option', async () => {
    const worker = ['worker', url, '--tasks', TASKS, '-q', queue]
    await expectUsage([
      { args: ['call', url, 'w.add', '1', '-q', queue, '--id', ''], flag: /'--id <id>'/ },
      { args: [...worker, '--id', 'a|b'], flag: /^worq: Expected --id to be .*"a\|b"/ },
      { args: [...worker, '--id', ''], flag: /^worq: Expected --id to be/ },
      { args: [...worker, '--lanes', '9'], flag: /^worq: Expected --lanes to be .*got 9/ },
      {
        args: [...worker, '--lanes', '4', '--concurrency', '2'],
        flag: /^worq: Expected --lanes .* at most --concurrency \(2\), got 4/,
      },
      { args: ['worker', url, '--tasks', '', '-q', queue], flag: /'-t, --tasks <module>'/ },
      { args: ['dashboard', url, '--port', '70000'], flag: /'-p, --port <port>'.* 65535/ },
      { args: ['dashboard', url, '--token', 'a b'], flag: /^worq: Expected --token to be/ },
      { args: ['dashboard', url, '--token', ''], flag: /^worq: Expected --token to be/ },
      {
        args: ['dashboard', url, '--port', '0'],
        env: { WORQ_TOKEN: 'a b' },
        flag: /^worq: Expected WORQ_TOKEN to be/,
      },
      {
        args: ['call', url, 'w.add', '{"__proto__":{"p":1}}', '-q', queue, '--wait', '0'],
        flag: /^worq: argument 1 has a "__proto__" key/,
      },
      { args: ['tasks', url, '-q', queue, '--offset', '1e300'], flag: /'--offset <n>'/ },
      { args: ['tasks', 'postgres://worq@127.0.0.1:1/x', '--offset', '1e300'], flag: /--offset/ },
      { args: ['tasks', url, '-q', queue, '--offset', '2000000000'], flag: /^worq: .*--offset/ },
      { args: ['tasks', url, '-q', queue, '--limit', '1001'], flag: /'-l, --limit <n>'/ },
      { args: ['tasks', url, '-q', queue, '--status', 'done'], flag: /^worq: .*--status/ },
      { args: ['tasks', url, '-q', queue, '--name', 'a b'], flag: /^worq: .*--name/ },
      { args: ['call', url, 'w.add', '-q', queue, '--attempts', '1e7'], flag: /'--attempts <n>'/ },
    ])
  })
})
