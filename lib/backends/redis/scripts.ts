/**
 * Typed wrappers of the Lua operations in ./scripts. Each file is the body of one atomic
 * operation; with the shared helpers of common.lua and ready.lua they make one Redis function
 * library (FUNCTION LOAD, Redis 7+), loaded once per server and called with FCALL, so a call runs
 * only its own code. Where functions are unavailable (Redis 6.2, an ACL without FUNCTION, or
 * `redisFunctions: false`) each operation is a script of its own, helpers included, sent with
 * EVALSHA (ioredis `defineCommand`, EVAL on NOSCRIPT). Call sites never name a script or count keys.
 */
import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import type { Redis } from 'ioredis'
import type { Park } from '../backend.js'
import { PREFIX } from './keys.js'
import { checkServer } from './checks.js'

const read = (name: string): string =>
  readFileSync(new URL(`./scripts/${name}.lua`, import.meta.url), 'utf8')

const NAMES = [
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
] as const

type Name = (typeof NAMES)[number]

/** The helpers every operation uses, in this order: helpers, then reserving and readying. */
const PRELUDE = ['common', 'ready'] as const

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

function load(): Sources {
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

/** One task of an enqueue batch, as enqueue.lua takes it. */
export interface EnqueueEntry {
  id: string
  /** Epoch ms before which it must not run; 0 = now. */
  runAt: number
  /** The record: `E0:<header JSON>\n<payload>`, or `P0:…` for a task with Deferred arguments. */
  body: string
  /** `<heartrate>|<keep ms>|<client>|<generation>`, as in the header (keep 0, no client: ignoreResult). */
  meta: string
}

/** One finish, as exchange.lua takes it. */
export interface FinishEntry {
  id: string
  token: string
  outcome: string
  /** Epoch ms to run again, or 'release': back first in line, the attempt uncounted. */
  retryAt?: number | 'release'
}

type Arg = string | number
type Call = (...args: Arg[]) => Promise<unknown>

/** How operations reach Redis: FCALL of the function library, or EVALSHA of whole scripts. */
type Mode = 'function' | 'script'

/** FUNCTION LOAD refused: a server without functions, or a user who may not load them. */
const NO_FUNCTIONS = /unknown command|NOPERM/i
/** FCALL refused before it ran: a user who may not call functions. */
const NO_FCALL = /NOPERM.*'fcall'/i

/** The operations, bound to one command connection. */
export class Scripts {
  readonly #redis: Redis
  /** Undefined until the first call finds out (and again after a server lost the library). */
  #mode: Mode | undefined
  #loading: Promise<void> | undefined

  readonly #functions: boolean

  /** `functions` false: never load the function library; send scripts with EVALSHA. */
  constructor(redis: Redis, functions = true) {
    this.#redis = redis
    this.#functions = functions
    for (const [name, lua] of load().scripts)
      redis.defineCommand(command(name), { numberOfKeys: 0, lua })
  }

  #call(name: Name, queue: string, args: Arg[], retried = false): Promise<unknown> {
    if (this.#mode === 'script') {
      const fn = (this.#redis as unknown as Record<string, Call>)[command(name)]!
      return fn.call(this.#redis, PREFIX, queue, ...args)
    }
    if (this.#mode === 'function') {
      const fname = load().library.functions.get(name)!
      return this.#redis.fcall(fname, 0, PREFIX, queue, ...args).catch((err: unknown) => {
        // The call did not run. A server restarted without persistence, or FUNCTION FLUSH: load
        // again. A user who may load functions but not call them: scripts from now on.
        if (retried) throw err
        const message = String(err)
        if (NO_FCALL.test(message)) this.#mode = 'script'
        else if (/function not found/i.test(message)) this.#mode = undefined
        else throw err
        return this.#call(name, queue, args, true)
      })
    }
    return this.#choose().then(() => this.#call(name, queue, args, retried))
  }

  /**
   * Checks the server's version (UnsupportedServer when it is too old), then loads the library (one
   * FUNCTION LOAD for all callers at once) or settles for scripts.
   */
  #choose(): Promise<void> {
    this.#loading ??= checkServer(this.#redis)
      .then(() => (this.#functions ? this.#load() : ('script' as const)))
      .then(mode => {
        this.#mode = mode
      })
      .finally(() => {
        this.#loading = undefined
      })
    return this.#loading
  }

  #load(): Promise<Mode> {
    return this.#redis.function('LOAD', load().library.code).then(
      () => 'function' as const,
      (err: unknown) => {
        const message = String(err)
        if (/already exists/i.test(message)) return 'function' as const
        if (NO_FUNCTIONS.test(message)) return 'script' as const
        throw err
      },
    )
  }

  /**
   * 1 (stored) or 0 (duplicate) per task, and the outcomes of `self`'s tasks that ended at once
   * (queue, id, outcome, …), which are not published.
   */
  enqueue(
    queue: string,
    self: string,
    tasks: readonly EnqueueEntry[],
    from = 0,
    to = tasks.length,
  ): Promise<[number[], string[]]> {
    const args: Arg[] = new Array(2 + 4 * (to - from))
    args[0] = self
    args[1] = to - from
    let a = 2
    for (let i = from; i < to; i++) {
      const t = tasks[i]!
      args[a++] = t.id
      args[a++] = t.runAt
      args[a++] = t.body
      args[a++] = t.meta
    }
    return this.#call('enqueue', queue, args) as Promise<[number[], string[]]>
  }

  /**
   * Stale ids, reserved tasks (5 entries each: id, token, attempt, record, slots), nextDueIn, and
   * the outcomes of `self`'s own tasks (queue, id, outcome, …), which are not published.
   */
  exchange(
    queue: string,
    nonce: string,
    max: number,
    woken: boolean,
    self: string,
    worker: string,
    park: Park | undefined,
    done: readonly FinishEntry[],
  ): Promise<[string[], unknown[], number, string[]]> {
    const args: Arg[] = [
      nonce,
      max,
      woken ? '1' : '0',
      self,
      worker,
      park ? Math.round(park.ms) : 0,
      park ? Math.max(0, Math.floor(park.slots)) : 0,
      done.length,
    ]
    for (const f of done) args.push(f.id, f.token, f.outcome, f.retryAt ?? '')
    return this.#call('exchange', queue, args) as Promise<[string[], unknown[], number, string[]]>
  }

  /** Ids whose lease was lost. */
  renew(
    queue: string,
    leases: ReadonlyArray<{ id: string; token: string; heartrate: number }>,
  ): Promise<string[]> {
    const args: Arg[] = [leases.length]
    for (const l of leases) args.push(l.id, l.token, l.heartrate)
    return this.#call('renew', queue, args) as Promise<string[]>
  }

  /** How many lapsed tasks were handled (0 when another caller swept within `intervalMs`). */
  sweep(queue: string, intervalMs: number, random: number): Promise<number> {
    return this.#call('sweep', queue, [
      Math.max(1, Math.round(intervalMs)),
      random,
    ]) as Promise<number>
  }

  /** 1 when cancelled. */
  cancel(queue: string, id: string): Promise<number> {
    return this.#call('cancel', queue, [id]) as Promise<number>
  }

  /** How many were cancelled. */
  purge(queue: string): Promise<number> {
    return this.#call('purge', queue, []) as Promise<number>
  }

  /** null, an outcome string, or 'P' / 'E' / 'R' (pending, enqueued, processing). */
  status(queue: string, id: string): Promise<string | null> {
    return this.#call('status', queue, [id]) as Promise<string | null>
  }

  /** Enqueued + delayed + pending. */
  size(queue: string): Promise<number> {
    return this.#call('size', queue, []) as Promise<number>
  }

  /** [waiting, delayed, pending, processing, oldest ready ms or -1, now, [id, json, …]]. */
  inspect(queue: string): Promise<[number, number, number, number, number, number, string[]]> {
    return this.#call('inspect', queue, []) as Promise<
      [number, number, number, number, number, number, string[]]
    >
  }

  /** Registers a worker for `ttlMs`, or removes it with `ttlMs` 0. */
  registerWorker(queue: string, id: string, ttlMs: number, info: string): Promise<unknown> {
    return this.#call('register-worker', queue, [id, Math.round(ttlMs), info])
  }
}

function command(name: Name): string {
  return `worq_${name.replace('-', '_')}`
}
