/**
 * Typed wrappers of the Lua scripts in ./scripts: each file is one atomic operation, loaded once,
 * prefixed with the shared helpers of common.lua and ready.lua, and defined on a connection with
 * ioredis `defineCommand` (EVALSHA, with EVAL on NOSCRIPT). Call sites never name a script or count
 * keys.
 */
import { readFileSync } from 'node:fs'
import type { Redis } from 'ioredis'
import type { Park } from '../backend.js'
import { PREFIX } from './keys.js'

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

let sources: Map<Name, string> | undefined

/** Prepended to every operation script, in this order: helpers, then reserving and readying. */
const PRELUDE = ['common', 'ready'] as const

function load(): Map<Name, string> {
  if (!sources) {
    const prelude = PRELUDE.map(read).join('\n')
    sources = new Map(NAMES.map(n => [n, `${prelude}\n${read(n)}`]))
  }
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

/** The scripts, bound to one command connection. */
export class Scripts {
  readonly #redis: Redis

  constructor(redis: Redis) {
    this.#redis = redis
    for (const [name, lua] of load()) redis.defineCommand(command(name), { numberOfKeys: 0, lua })
  }

  #call(name: Name, queue: string, args: Arg[]): Promise<unknown> {
    const fn = (this.#redis as unknown as Record<string, Call>)[command(name)]!
    return fn.call(this.#redis, PREFIX, queue, ...args)
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
