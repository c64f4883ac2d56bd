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
 * The helpers every operation uses, in this order (each uses only what comes before it): basics,
 * events and metrics, the lines tasks wait in, limits and the cache, how tasks end, reserving and
 * readying, storing a new task.
 */
const PRELUDE = ['common', 'observe', 'lines', 'shaping', 'store', 'ready', 'admit'] as const

/** The Lua source, both ways it is sent. */
interface Sources {
  /** One whole script per operation (EVALSHA). */
  scripts: Map<Name, string>
  /** The function library: its source, and each operation's function name. */
  library: { code: string; functions: Map<Name, string> }
}

let sources: Sources | undefined

/** The Lua local that holds an operation: a function of (keys, args), as FCALL calls it. */
const local = (name: Name): string => `op_${name.replace('-', '_')}`

/** The Lua sources, read once. */
export function load(): Sources {
  if (sources) return sources
  const prelude = PRELUDE.map(read).join('\n')
  const op = (name: Name) =>
    `local function ${local(name)}(_, args)\nbegin(args)\n${read(name)}\nend`
  // A script's globals KEYS and ARGV, taken before common.lua declares its own ARGV.
  const script = (n: Name) =>
    `local keys, args = KEYS, ARGV\n${prelude}\n${op(n)}\nreturn ${local(n)}(keys, args)`
  const scripts = new Map(NAMES.map(n => [n, script(n)] as const))
  // The library is named for its content: processes running different versions of worq on one
  // server each call their own, and loading is idempotent.
  const body = `${prelude}\n${NAMES.map(op).join('\n')}`
  const lib = `worq_${createHash('sha1').update(body).digest('hex').slice(0, 12)}`
  const functions = new Map(NAMES.map(n => [n, `${lib}_${local(n).slice(3)}`] as const))
  const register = NAMES.map(n => `redis.register_function('${functions.get(n)}', ${local(n)})`)
  const code = `#!lua name=${lib}\n${body}\n${register.join('\n')}\n`
  sources = { scripts, library: { code, functions } }
  return sources
}

/** The SHA1 of an operation's whole script (EVALSHA). */
export function scriptSha(name: Name): string {
  return createHash('sha1').update(load().scripts.get(name)!).digest('hex')
}

/** The ioredis command an operation's script is defined as. */
export function command(name: Name): string {
  return `worq_${name.replace('-', '_')}`
}
