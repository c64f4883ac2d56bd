/**
 * The Lua of the Redis backend, both ways it is sent: one function library (FUNCTION LOAD, Redis
 * 7+) named for its content, and one whole script per operation (EVALSHA) where functions are
 * unavailable. Each file in ./scripts is the body of one atomic operation; the PRELUDE files are
 * the helpers they share.
 */
import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'

const read = (name: string): string =>
  readFileSync(new URL(`./scripts/${name}.lua`, import.meta.url), 'utf8')

/** Every operation, by the name of its file in ./scripts. */
export const NAMES = [
  'enqueue',
  'exchange',
  'renew',
  'sweep',
  'cancel',
  'purge',
  'status',
  'size',
  'inspect',
  'register-worker',
  'progress',
  'info',
  'list',
  'configure',
  'limit',
  'cache',
  'schedule',
  'metrics',
  'link',
  'fill',
] as const

/** An operation's name. */
export type Name = (typeof NAMES)[number]

/**
 * Function flags (FUNCTION LOAD). Redis refuses a function that may write while it is out of
 * memory (`maxmemory` reached under `noeviction`). `no-writes`: operations that only read, so that
 * waiting, sizes and listings keep working on a full server. `allow-oom`: operations that add
 * nothing, so that running tasks keep their leases (renew moves existing lease scores), dead
 * workers' entries go (inspect), and an operator can free the server with purge or cancel (each
 * ended task's record, payload included, becomes a short outcome). Enqueues and exchanges stay
 * refused: a full server takes no new work and stores no new results (docs/redis.md).
 */
const FLAGS: Partial<Record<Name, 'no-writes' | 'allow-oom'>> = {
  status: 'no-writes',
  size: 'no-writes',
  info: 'no-writes',
  list: 'no-writes',
  renew: 'allow-oom',
  inspect: 'allow-oom',
  purge: 'allow-oom',
  cancel: 'allow-oom',
}

/**
 * The helpers every operation uses, in this order (each uses only what comes before it): basics,
 * what a call sends and the formats it reads, events and metrics, the lines tasks wait in, limits
 * and the cache, the listing index, how tasks end, reserving and readying, storing a new task.
 */
const PRELUDE = [
  'common',
  'outbox',
  'observe',
  'lines',
  'shaping',
  'listing',
  'store',
  'ready',
  'admit',
] as const

/** The function library: its source, and each operation's function name. */
interface Library {
  code: string
  functions: Map<Name, string>
}

let prelude: string | undefined
/** The shared helpers, read once. */
const preludeSource = (): string => (prelude ??= PRELUDE.map(read).join('\n'))

/** An operation's part of its function name: `register-worker` → `register_worker`. */
const suffix = (name: Name): string => name.replace('-', '_')

/**
 * An operation as a function of (keys, args), as FCALL calls it, that starts with its call's fresh
 * state. Written where it is used, as an expression, not held in a local of the library's main
 * chunk: Lua allows a function 200 locals, and the helpers take most of them. The comment after
 * its parameters names the operation (bench/lua-lines.js finds it there).
 */
const op = (name: Name): string => `function(_, args) -- ${name}\nbegin(args)\n${read(name)}\nend`

let library: Library | undefined

/** The function library (FUNCTION LOAD), built once. */
export function functionLibrary(): Library {
  if (library) return library
  const ops = NAMES.map(op)
  // The library is named for its content: processes running different versions of worq on one
  // server each call their own, and loading is idempotent.
  const lib = `worq_${createHash('sha1')
    .update(`${preludeSource()}\n${ops.join('\n')}`)
    .digest('hex')
    .slice(0, 12)}`
  const functions = new Map(NAMES.map(n => [n, `${lib}_${suffix(n)}`] as const))
  const register = NAMES.map((n, i) => {
    const flags = FLAGS[n] ? `, flags = { '${FLAGS[n]}' }` : ''
    return `redis.register_function{ function_name = '${functions.get(n)}', callback = ${ops[i]}${flags} }`
  })
  library = { code: `#!lua name=${lib}\n${preludeSource()}\n${register.join('\n')}\n`, functions }
  return library
}

/**
 * Each operation's whole script (EVALSHA), built the first time a connection needs scripts: every
 * script carries the whole prelude (about 1.6 MB for all of them), which a server with functions
 * never needs.
 */
const scripts = new Map<Name, { lua: string; sha: string }>()

/** An operation's whole script and its SHA1 (EVALSHA), built once. */
export function script(name: Name): { lua: string; sha: string } {
  let s = scripts.get(name)
  if (!s) {
    // A script's globals KEYS and ARGV, taken before common.lua declares its own ARGV.
    const lua = `local keys, args = KEYS, ARGV\n${preludeSource()}\nreturn (${op(name)})(keys, args)`
    s = { lua, sha: createHash('sha1').update(lua).digest('hex') }
    scripts.set(name, s)
  }
  return s
}

/** The ioredis command an operation's script is defined as. */
export function command(name: Name): string {
  return `worq_${name.replace('-', '_')}`
}
