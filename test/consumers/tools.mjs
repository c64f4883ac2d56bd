/**
 * What the consumer matrix needs from the outside: running a command, installing a TypeScript or
 * Node version once into a cache folder, packing the tarball, and running the tarball's linters.
 */
import { spawn } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'

/**
 * Runs `cmd` with `args`; resolves with its exit code, its stdout, and stdout and stderr as they
 * came (never rejects on a failure).
 */
export function exec(cmd, args, { cwd, timeout = 120_000, env } = {}) {
  return new Promise(resolve => {
    const started = Date.now()
    const child = spawn(cmd, args, { cwd, env: { ...process.env, ...env } })
    let stdout = ''
    let output = ''
    child.stdout.on('data', d => ((stdout += d), (output += d)))
    child.stderr.on('data', d => (output += d))
    const timer = setTimeout(() => {
      output += `\n(killed after ${timeout} ms)`
      child.kill('SIGKILL')
    }, timeout)
    child.on('error', err => (output += `\n${err.message}`))
    child.on('close', code => {
      clearTimeout(timer)
      resolve({ code: code ?? 1, stdout, output, ms: Date.now() - started })
    })
  })
}

/** Like `exec`, but throws with the output when the command fails. */
export async function mustExec(cmd, args, options) {
  const result = await exec(cmd, args, options)
  if (result.code !== 0)
    throw new Error(`${cmd} ${args.join(' ')} failed (exit ${result.code}):\n${result.output}`)
  return result
}

/**
 * Installs `spec` into `<cache>/<folder>` unless `check(dir)` finds it there already; returns the
 * folder. Every cell and every later run share it.
 */
export async function cached(cache, folder, spec, check) {
  const dir = path.join(cache, folder)
  if (check(dir)) return dir
  fs.rmSync(dir, { recursive: true, force: true })
  fs.mkdirSync(dir, { recursive: true })
  fs.writeFileSync(path.join(dir, 'package.json'), '{ "private": true }\n')
  await mustExec('npm', ['install', '--no-audit', '--no-fund', '--no-package-lock', spec], {
    cwd: dir,
    timeout: 300_000,
  })
  if (!check(dir)) throw new Error(`${spec} installed into ${dir}, but is not usable there`)
  return dir
}

/** The version in `dir/node_modules/<name>/package.json` (the Node packages write `v20.19.0`). */
export function installedVersion(dir, name) {
  try {
    const file = path.join(dir, 'node_modules', name, 'package.json')
    return JSON.parse(fs.readFileSync(file, 'utf8')).version.replace(/^v/, '')
  } catch {
    return undefined
  }
}

/** The tsc of TypeScript `version`, installed once into the cache. */
export async function typescript(cache, version) {
  const dir = await cached(
    cache,
    `typescript-${version}`,
    `typescript@${version}`,
    d => installedVersion(d, 'typescript') === version,
  )
  return path.join(dir, 'node_modules', 'typescript', 'bin', 'tsc')
}

/**
 * A Node binary of exactly `version`, from the registry's per-platform `node-<os>-<arch>`
 * packages (what the `node` package installs through its install script), installed once.
 */
export async function nodeBinary(cache, version) {
  const os = { linux: 'linux', darwin: 'darwin' }[process.platform]
  if (!os) throw new Error(`no Node binary package for platform ${process.platform}`)
  const name = `node-${os}-${process.arch}`
  const dir = await cached(
    cache,
    `node-${version}`,
    `${name}@${version}`,
    d => installedVersion(d, name) === version,
  )
  return path.join(dir, 'node_modules', name, 'bin', 'node')
}

/** Builds and packs the repository into `dest`; returns the tarball's path, file count and sizes. */
export async function pack(repo, dest) {
  await mustExec('npm', ['run', 'build'], { cwd: repo, timeout: 300_000 })
  const { stdout } = await mustExec(
    'npm',
    ['pack', '--json', '--ignore-scripts', '--pack-destination', dest],
    { cwd: repo, timeout: 300_000 },
  )
  const [info] = JSON.parse(stdout)
  return {
    file: path.join(dest, info.filename),
    files: info.entryCount,
    size: info.size,
    unpackedSize: info.unpackedSize,
  }
}
