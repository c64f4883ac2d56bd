/**
 * The built CLI (`npm run build`, run here first when dist/ is missing): `node dist/cli/main.js
 * worker` forks dist's child-main.js, loads ESM and CommonJS tasks modules, and `worq call`
 * round-trips.
 */
import { expect } from 'chai'
import { execFileSync } from 'node:child_process'
import { hasDist, killAll, worq, worqRun } from '../helpers/cli.js'
import { redisUrl } from '../helpers/redis-server.js'
import { uniqueQueue } from '../helpers/util.js'

describe('cli: the built worq (dist)', function () {
  before(function () {
    // A fresh clone has no dist/ before its first build: build it, so the test runs everywhere.
    if (hasDist()) return
    this.timeout(180_000)
    execFileSync('npm', ['run', 'build'], { stdio: 'ignore' })
  })
  after(() => killAll())

  it('runs an ESM tasks module in child processes and a CommonJS one in process', async () => {
    const url = await redisUrl()
    const queue = uniqueQueue('dist')
    const esm = worq(
      ['worker', url, '--tasks', 'test/fixtures/dist-tasks.mjs', '-q', queue, '--processes', '1'],
      { dist: true },
    )
    await esm.line(/worker:start .* 2 tasks/)
    const pid = await worqRun(['call', url, 'dist.pid', '-q', queue], { dist: true })
    expect(pid.code).to.equal(0)
    expect(Number(pid.out)).to.not.equal(esm.proc.pid)
    expect(esm.lines.join('\n')).to.include(`child:ready pid ${pid.out}`)
    esm.proc.kill('SIGTERM')
    expect((await esm.exited).code).to.equal(0)

    const cjs = worq(['worker', url, '--tasks', 'test/fixtures/cjs-tasks.cjs', '-q', queue], {
      dist: true,
    })
    await cjs.line(/worker:start .* 1 tasks \(cjs\.twice\)/)
    expect(
      await worqRun(['call', url, 'cjs.twice', '21', '-q', queue], { dist: true }),
    ).to.deep.equal({ code: 0, out: '42' })
    cjs.proc.kill('SIGTERM')
    expect((await cjs.exited).code).to.equal(0)
  })
})
