/**
 * The consumer matrix: worq as users install it. `npm run test:consumers` (and .ci/run):
 *
 * 1. builds and packs the tarball, and prints its file count and size;
 * 2. runs publint and attw on the tarball, which must report nothing;
 * 3. installs the tarball into a fresh project in the system's temporary folder (no link to this
 *    repository), and copies that project without @types/node;
 * 4. compiles the fixtures in every cell of matrix.mjs with a TypeScript installed once per
 *    version into the cache (node_modules/.cache/worq-consumers, or $WORQ_CONSUMERS_CACHE);
 * 5. runs TypeScript's output, and the JavaScript clients on the oldest Node that `engines`
 *    allows (a binary from the registry, cached too) and on this machine's Node.
 *
 * Any unexpected compile error, unused @ts-expect-error or failed run fails it. Options:
 * `--only <text>` runs the cells whose name contains the text; `--keep` keeps the projects.
 */
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { cells, PROGRAMS } from './matrix.mjs'
import { exec, mustExec, nodeBinary, pack, typescript } from './tools.mjs'

const here = path.dirname(fileURLToPath(import.meta.url))
const repo = path.resolve(here, '../..')
const argv = process.argv.slice(2)
const only = argv.includes('--only') ? argv[argv.indexOf('--only') + 1] : undefined
const keep = argv.includes('--keep')
const cache =
  process.env.WORQ_CONSUMERS_CACHE ?? path.join(repo, 'node_modules', '.cache', 'worq-consumers')
const bin = name => path.join(repo, 'node_modules', '.bin', name)

let passed = 0
let failed = 0

/** Prints one check's line; a failure's detail is indented under it. */
function report(name, ms, problem, detail = '') {
  if (problem) failed++
  else passed++
  const time = `${(ms / 1000).toFixed(1)}s`.padStart(6)
  console.log(`${problem ? 'FAIL' : 'ok  '} ${time}  ${name}${problem ? `: ${problem}` : ''}`)
  if (problem && detail.trim()) console.log(detail.trim().replace(/^/gm, '        '))
}

const kB = bytes => `${(bytes / 1024).toFixed(1)} kB`

/** Why a linter's run is wrong: it failed, or printed something other than its all-clear. */
const complaint = ({ code, output }, allClear) =>
  code !== 0 ? `exit ${code}` : allClear.test(output) ? undefined : 'it reported something'

/** publint and attw on the tarball: both must report nothing. */
async function lintTarball(tarball) {
  const publint = await exec(bin('publint'), ['--strict', tarball])
  report('publint', publint.ms, complaint(publint, /All good/), publint.output)
  // cjs-resolves-to-esm is not a fault here: worq is an ES module on purpose, and `engines` asks
  // for Node 20.19 or later, whose require() loads ES modules (the CommonJS client below proves
  // it on Node 20.19.0). attw resolves with TypeScript 5.6's node16 mode, which models a Node that
  // cannot; TypeScript models require(esm) under `nodenext` from 5.8 on (the .cts cells check
  // both). Every other rule applies.
  const rules = ['--ignore-rules', 'cjs-resolves-to-esm']
  const attw = await exec(bin('attw'), [tarball, '--format', 'ascii', ...rules])
  report('attw', attw.ms, complaint(attw, /No problems found/), attw.output)
}

/** A fresh project with the tarball installed, the fixtures, and `entries.ts`. */
async function consumerProject(dir, tarball) {
  fs.mkdirSync(dir)
  const pkg = { name: 'worq-consumer', private: true, type: 'module' }
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify(pkg, null, 2) + '\n')
  await mustExec('npm', ['install', '--no-audit', '--no-fund', tarball], {
    cwd: dir,
    timeout: 300_000,
  })
  const worq = path.join(dir, 'node_modules', 'worq')
  if (fs.lstatSync(worq).isSymbolicLink()) throw new Error(`${worq} is a link, not an install`)
  fs.cpSync(path.join(here, 'fixtures'), dir, { recursive: true })
  // One import per entry point of the exports map: a subpath added there is checked everywhere.
  const { exports } = JSON.parse(fs.readFileSync(path.join(worq, 'package.json'), 'utf8'))
  const subpaths = Object.keys(exports).filter(s => s !== './package.json')
  const lines = subpaths.map((s, i) => `import * as entry${i} from 'worq${s.slice(1)}'`)
  lines.push(`export const entries = [${subpaths.map((_, i) => `entry${i}`).join(', ')}]`)
  fs.writeFileSync(
    path.join(dir, 'entries.ts'),
    `// Written by test/consumers/run.mjs.\n${lines.join('\n')}\n`,
  )
  return dir
}

/** Why a cell's compile is wrong, or undefined when it is as expected. */
function judge(cell, { code, output }) {
  const errors = [...output.matchAll(/^(\S+?)\(\d+,\d+\): error (TS\d+): (.*)$/gm)].map(
    ([, file, tsCode, text]) => ({ file, code: tsCode, text }),
  )
  if (!cell.expect) return code === 0 ? undefined : 'expected a clean compile'
  const { codes, says } = cell.expect
  if (code === 0) return `expected ${codes.join(' or ')}, but it compiled`
  if (errors.length === 0 || errors.some(e => !codes.includes(e.code)))
    return `expected only ${codes.join(' or ')}`
  if (!errors.some(e => cell.files.includes(e.file) && e.text.includes(says)))
    return `no error in ${cell.files.join(', ')} says "${says}"`
  return undefined
}

/** Compiles one cell and, when it has one, runs TypeScript's output. */
async function runCell(cell, n, projects, compilers) {
  const dir = projects[cell.project]
  const outDir = `out/${n}`
  const options = cell.run ? { ...cell.options, noEmit: false, outDir } : cell.options
  const config = `tsconfig.${n}.json`
  const tsconfig = { compilerOptions: options, files: cell.files }
  fs.writeFileSync(path.join(dir, config), JSON.stringify(tsconfig, null, 2) + '\n')
  const tsc = await exec(
    process.execPath,
    [compilers[cell.ts], '-p', config, '--pretty', 'false'],
    {
      cwd: dir,
      timeout: 300_000,
    },
  )
  const problem = judge(cell, tsc)
  report(
    `${cell.id}`,
    tsc.ms,
    problem,
    problem && `${config}: ${JSON.stringify(options)}\n${tsc.output}`,
  )
  if (problem || !cell.run) return
  const run = await exec(process.execPath, [path.join(outDir, cell.run)], { cwd: dir })
  const ok = run.code === 0 && /typed-client: add = 3/.test(run.output)
  report(`${cell.id}: node ${cell.run}`, run.ms, !ok && `exit ${run.code}`, run.output)
}

/** Runs `items` through `fn`, `limit` at a time. */
async function inParallel(items, limit, fn) {
  let next = 0
  const worker = async () => {
    while (next < items.length) {
      const i = next++
      await fn(items[i], i)
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker))
}

/**
 * The oldest Node that `engines.node` allows: the lowest bound of its ranges (`^MAJOR.MINOR.PATCH`
 * or `>=MAJOR.MINOR[.PATCH]`, joined by `||`).
 */
function oldestNode() {
  const { engines } = JSON.parse(fs.readFileSync(path.join(repo, 'package.json'), 'utf8'))
  const bounds = (engines?.node ?? '').split('||').map(range => {
    const m = /^\s*(?:\^|>=)\s*(\d+)\.(\d+)(?:\.(\d+))?\s*$/.exec(range)
    if (!m)
      throw new Error(`cannot read the oldest Node from engines.node ${JSON.stringify(engines)}`)
    return [Number(m[1]), Number(m[2]), Number(m[3] ?? 0)]
  })
  bounds.sort((a, b) => a[0] - b[0] || a[1] - b[1] || a[2] - b[2])
  return bounds[0].join('.')
}

const started = Date.now()
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'worq-consumers-'))
try {
  const tarball = await pack(repo, work)
  console.log(
    `tarball ${path.basename(tarball.file)}: ${tarball.files} files, ${kB(tarball.size)} packed, ` +
      `${kB(tarball.unpackedSize)} unpacked`,
  )
  await lintTarball(tarball.file)

  const full = await consumerProject(path.join(work, 'full'), tarball.file)
  const bare = path.join(work, 'bare')
  const typesNode = path.join(full, 'node_modules', '@types', 'node')
  fs.cpSync(full, bare, { recursive: true, filter: src => src !== typesNode })
  const projects = { full, bare }

  const todo = cells('entries.ts').filter(c => !only || c.id.includes(only))
  const compilers = {}
  for (const ts of new Set(todo.map(c => c.ts))) compilers[ts] = await typescript(cache, ts)
  await inParallel(todo, os.availableParallelism(), (cell, n) =>
    runCell(cell, n, projects, compilers),
  )

  const oldest = await nodeBinary(cache, oldestNode())
  const { version, bin: bins } = JSON.parse(
    fs.readFileSync(path.join(full, 'node_modules/worq/package.json'), 'utf8'),
  )
  for (const node of [oldest, process.execPath]) {
    const nodeVersion = (await mustExec(node, ['--version'])).output.trim()
    for (const program of PROGRAMS) {
      if (only && !program.includes(only)) continue
      const run = await exec(node, [program], { cwd: full })
      const ok = run.code === 0 && /add = 3/.test(run.output)
      report(`node ${nodeVersion} ${program}`, run.ms, !ok && `exit ${run.code}`, run.output)
    }
    const cli = await exec(node, [path.join('node_modules/worq', bins.worq), '--version'], {
      cwd: full,
    })
    const ok = cli.code === 0 && cli.output.trim() === version
    report(`node ${nodeVersion} worq --version`, cli.ms, !ok && `exit ${cli.code}`, cli.output)
  }
} catch (err) {
  failed++
  console.log(`FAIL  ${err.stack ?? err}`)
} finally {
  if (keep) console.log(`kept ${work}`)
  else fs.rmSync(work, { recursive: true, force: true })
}
console.log(
  `consumers: ${passed} passed, ${failed} failed (${Math.round((Date.now() - started) / 1000)} s)`,
)
process.exitCode = failed > 0 ? 1 : 0
