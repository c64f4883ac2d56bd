/**
 * Fuzzes the `worq` command line in-process (program.ts): random commands, backend URLs, flags and
 * values. Whatever the arguments, the command ends with a documented exit code, says why on
 * stderr when it fails, and never throws, hangs or leaves a rejection unhandled.
 *
 * Three limits keep every run short, and are the only ones: no URL reaches a server (an
 * unreachable one is retried for seconds); `dashboard` never gets a valid URL and `worker` never a
 * tasks module that exists (either would serve until stopped, which is its job); and `call` carries
 * with `--wait 0`, placed where no other flag can take it as its value (it would otherwise wait
 * a minute for a worker that memory:// in this process never has).
 */
import { expect } from 'chai'
import fc from 'fast-check'
import { existsSync } from 'node:fs'
import { main } from '../../lib/cli/program.js'
import { EXIT } from '../../lib/cli/exit-codes.js'

const RUNS = Number(process.env.WORQ_FUZZ_RUNS ?? 20) * 250

const COMMANDS = [
  'worker',
  'info',
  'call',
  'purge',
  'tasks',
  'task',
  'cancel',
  'pause',
  'resume',
  'schedules',
  'dashboard',
  'migrate',
  'help',
  'nonsense',
]
const FLAGS = [
  '--queue',
  '-q',
  '--status',
  '--name',
  '--limit',
  '--offset',
  '--json',
  '--wait',
  '-w',
  '--attempts',
  '--timeout',
  '--heartrate',
  '--id',
  '--tasks',
  '-t',
  '--concurrency',
  '-c',
  '--processes',
  '--lanes',
  '--no-task-context',
  '--sweep-interval',
  '--log-format',
  '--port',
  '--host',
  '--token',
  '--read-only',
  '--grant',
  '--help',
  '--version',
  '--',
  '-',
]
const value = fc.oneof(
  fc.string({ maxLength: 12 }),
  fc.integer({ min: -1e12, max: 1e12 }).map(String),
  fc.double().map(String),
  fc.constantFrom('', ' ', '0', '-1', 'NaN', '1e400', 'null', '{}', '[]', '"x"', '{"a":', '\u0000'),
  fc.json({ maxDepth: 2 }),
)
const url = fc.oneof(
  fc.constant('memory://'),
  // Malformed URLs of every scheme, each refused before any connection: a bare `redis:` or
  // `redis://` means 127.0.0.1:6379, which would reach (and change) whatever server the machine
  // runs there, or wait seconds for one that does not.
  fc.constantFrom(
    'memory:',
    'redis://:99999',
    'redis://[',
    'redis-cluster://',
    'redis-sentinel://h:1',
    'http://x',
    'worq',
  ),
  fc.string({ maxLength: 20 }),
)
const argv = fc
  .record({
    command: fc.constantFrom(...COMMANDS),
    url,
    rest: fc.array(fc.oneof(fc.constantFrom(...FLAGS), value), { maxLength: 8 }),
  })
  .map(({ command, url: u, rest }) => {
    const kept = rest.filter(a => !existsSync(a))
    if (command === 'dashboard') return [command, `bad-${u}`, ...kept]
    // `--wait 0` goes before the rest, where no flag can take it as its value (`--id --wait`
    // would), and no later `--wait`/`-w` may replace it.
    if (command === 'call')
      return [command, u, '--wait', '0', ...kept.filter(a => !/^(-w|--wait)/.test(a))]
    return [command, u, ...kept]
  })

/** Runs `worq …args` in this process with stdout and stderr captured. */
async function run(args: string[]): Promise<{ code: number; err: string }> {
  const out = process.stdout.write
  const errWrite = process.stderr.write
  let err = ''
  process.stdout.write = (() => true) as typeof process.stdout.write
  process.stderr.write = ((chunk: string | Uint8Array) => {
    err += String(chunk)
    return true
  }) as typeof process.stderr.write
  try {
    let timer: NodeJS.Timeout | undefined
    const code = await Promise.race([
      main(['node', 'worq', ...args]),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`hung: worq ${JSON.stringify(args)}`)), 10_000)
      }),
    ])
    clearTimeout(timer)
    return { code, err }
  } finally {
    process.stdout.write = out
    process.stderr.write = errWrite
  }
}

describe('cli: fuzzed arguments', function () {
  this.timeout(600_000)

  it(`${RUNS} random command lines end with a documented exit code and a reason`, async () => {
    const unhandled: unknown[] = []
    const onUnhandled = (e: unknown) => unhandled.push(e)
    process.on('unhandledRejection', onUnhandled)
    const codes = new Map<number, number>()
    try {
      await fc.assert(
        fc.asyncProperty(argv, async args => {
          const { code, err } = await run(args)
          codes.set(code, (codes.get(code) ?? 0) + 1)
          expect(Object.values(EXIT), `exit code of worq ${JSON.stringify(args)}`).to.include(code)
          if (code !== EXIT.OK) expect(err.trim(), `reason for ${code}`).to.not.equal('')
        }),
        { numRuns: RUNS },
      )
    } finally {
      process.off('unhandledRejection', onUnhandled)
    }
    expect(unhandled).to.deep.equal([])
    // The mix reached both failures and successes, not only usage errors.
    expect(codes.get(EXIT.USAGE) ?? 0).to.be.greaterThan(0)
    expect(codes.get(EXIT.OK) ?? 0).to.be.greaterThan(0)
  })
})
