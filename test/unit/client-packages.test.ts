/**
 * The backends' client packages load with their backend: importing worq loads neither ioredis nor
 * node-postgres, a memory:// broker runs without them, and only lib/backends/redis/ioredis.ts and
 * lib/backends/postgres/pg.ts take them by value (every other module imports their types only).
 */
import { expect } from 'chai'
import { execFile } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { promisify } from 'node:util'
import ts from 'typescript'

const root = path.resolve(import.meta.dirname, '../..')
const lib = path.join(root, 'lib')

/** The lib/ modules that import `pkg` (or a path inside it) by value. */
function valueImporters(pkg: string): string[] {
  const found: string[] = []
  for (const file of fs.readdirSync(lib, { recursive: true, encoding: 'utf8' })) {
    if (!file.endsWith('.ts')) continue
    const source = ts.createSourceFile(
      file,
      fs.readFileSync(path.join(lib, file), 'utf8'),
      ts.ScriptTarget.Latest,
    )
    for (const s of source.statements) {
      if (!ts.isImportDeclaration(s) || !ts.isStringLiteral(s.moduleSpecifier)) continue
      const from = s.moduleSpecifier.text
      if (from !== pkg && !from.startsWith(`${pkg}/`)) continue
      if (!s.importClause?.isTypeOnly) found.push(path.normalize(file))
    }
  }
  return found
}

describe('client packages load with their backend', () => {
  it('only ioredis.ts and pg.ts import them by value', () => {
    expect(valueImporters('ioredis')).to.deep.equal([])
    expect(valueImporters('pg')).to.deep.equal([])
    const ioredis = fs.readFileSync(path.join(lib, 'backends/redis/ioredis.ts'), 'utf8')
    const pg = fs.readFileSync(path.join(lib, 'backends/postgres/pg.ts'), 'utf8')
    expect(ioredis).to.include("await import('ioredis')")
    expect(pg).to.include("await import('pg')")
  })

  it('importing worq and running a memory:// broker loads neither; a redis:// URL loads ioredis', async () => {
    const script = `
      import { createRequire } from 'node:module'
      const { getBroker, TaskSpace, WorkerPool } = await import('./lib/index.ts')
      const cache = createRequire(import.meta.url).cache
      const loaded = () => ['ioredis', 'pg'].filter(p => Object.keys(cache).some(k => k.includes('/node_modules/' + p + '/')))
      const afterImport = loaded()
      const broker = getBroker('memory://', 'lazy').expose(new TaskSpace('', { add: (a, b) => a + b }))
      const pool = new WorkerPool(broker, { concurrency: 1 })
      await pool.start()
      const value = await (await broker.queue().add(1, 2)).result(5000)
      await pool.stop()
      await broker.close()
      const afterMemory = loaded()
      const redis = getBroker('redis://127.0.0.1:1/0', 'lazy')
      await redis.backend() // open: its connections are made (none answers on port 1)
      const afterRedisBroker = loaded()
      await redis.close()
      process.stdout.write(JSON.stringify({ afterImport, value, afterMemory, afterRedisBroker }))
    `
    const { stdout } = await promisify(execFile)(
      process.execPath,
      ['--import', 'tsx', '--input-type=module', '-e', script],
      { cwd: root },
    )
    expect(JSON.parse(stdout)).to.deep.equal({
      afterImport: [],
      value: 3,
      afterMemory: [],
      afterRedisBroker: ['ioredis'],
    })
  })
})
