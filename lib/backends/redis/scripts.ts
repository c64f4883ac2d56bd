/**
 * Typed wrappers of the Lua operations in ./scripts. Each file is the body of one atomic
 * operation; with the shared helpers of common.lua and ready.lua they make one Redis function
 * library (FUNCTION LOAD, Redis 7+), loaded once per server and called with FCALL, so a call runs
 * only its own code. Where functions are unavailable (Redis 6.2, an ACL without FUNCTION, or
 * `redisFunctions: false`) each operation is a script of its own, helpers included, sent with
 * EVALSHA (ioredis `defineCommand`, EVAL on NOSCRIPT). Call sites never name a script or count keys.
 */
import { Cluster } from 'ioredis'
import type { Park } from '../backend.js'
import { PREFIX, queueKey } from './keys.js'
import { checkServer } from './checks.js'
import type { Connection } from './connections.js'
import { ReplicationTimeout } from '../../errors.js'
import { command, load, type Name, scriptSha } from './lua-source.js'
import type {
  EnqueueEntry,
  ExchangeReply,
  FinishEntry,
  Fill,
  InfoReply,
  Link,
  ListReply,
  ListStep,
  MetricsReply,
} from './script-types.js'

export type * from './script-types.js'

type Arg = string | number
type Call = (...args: Arg[]) => Promise<unknown>

/** How operations reach Redis: FCALL of the function library, or EVALSHA of whole scripts. */
type Mode = 'function' | 'script'

/** FUNCTION LOAD refused: a server without functions, or a user who may not load them. */
const NO_FUNCTIONS = /unknown command|NOPERM/i
/** FCALL refused before it ran: a user who may not call functions. */
const NO_FCALL = /NOPERM.*'fcall'/i

/** Operations whose writes `replicas` waits for: those that store tasks or outcomes. */
const CONFIRMED: ReadonlySet<Name> = new Set(['enqueue', 'exchange', 'schedule'])

/** The masters of a cluster (once it knows them), or the one server. */
async function masters(redis: Connection): Promise<Connection[]> {
  if (!(redis instanceof Cluster)) return [redis]
  if (redis.status !== 'ready')
    await new Promise<void>((resolve, reject) => {
      const ready = () => {
        redis.off('end', end)
        resolve()
      }
      const end = () => {
        redis.off('ready', ready)
        reject(new Error('the cluster connection closed before it was ready'))
      }
      redis.once('ready', ready)
      redis.once('end', end)
    })
  return redis.nodes('master')
}

/** The operations, bound to one command connection. */
export class Scripts {
  readonly #redis: Connection
  /** Undefined until the first call finds out (and again after a server lost the library). */
  #mode: Mode | undefined
  #loading: Promise<void> | undefined

  readonly #functions: boolean
  readonly #replicas: { count: number; timeoutMs: number }
  /** Cross-queue hand-overs go in two steps (a cluster: a call keeps to its queue's slot). */
  readonly split: boolean

  /**
   * `functions` false: never load the function library; send scripts with EVALSHA. `replicas`:
   * how many replicas must acknowledge an enqueue or a finish (WAIT), and how long they may take.
   */
  constructor(
    redis: Connection,
    functions = true,
    replicas = { count: 0, timeoutMs: 1_000 },
    split = redis instanceof Cluster,
  ) {
    this.#redis = redis
    this.#functions = functions
    this.#replicas = replicas
    this.split = split
    // No fixed key count: a call declares one key, or two on a cluster (see #keys).
    for (const [name, lua] of load().scripts) redis.defineCommand(command(name), { lua })
  }

  /**
   * Calls an operation of `queue`. Its one declared key is a key of the queue (every key a call
   * touches is in the queue's slot, save a Deferred argument's on another queue).
   */
  #call(name: Name, queue: string, args: Arg[], retried = false): Promise<unknown> {
    if (this.#replicas.count > 0 && CONFIRMED.has(name)) return this.#confirmed(name, queue, args)
    const keys = this.#keys(queue)
    const ns = this.split ? SPLIT_PREFIX : PREFIX
    if (this.#mode === 'script') {
      const fn = (this.#redis as unknown as Record<string, Call>)[command(name)]!
      return fn.call(this.#redis, keys.length, ...keys, ns, queue, ...args)
    }
    if (this.#mode === 'function') {
      const fname = load().library.functions.get(name)!
      return this.#redis
        .fcall(fname, keys.length, ...keys, ns, queue, ...args)
        .catch((err: unknown) => {
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
   * The keys a call declares: a key of its queue, so Redis Cluster routes it to the queue's slot.
   * On a cluster also `moving`, a key that never exists: while the queue's slot migrates (a
   * resharding), Redis answers a call that declares several keys, some of them missing, with
   * TRYAGAIN before running it, and ioredis sends it again after `retryDelayOnTryAgain`. So no
   * call runs while the queue's keys are split between two nodes (a script would see only part of
   * them, and one that touched a key already moved would stop half done).
   */
  #keys(queue: string): string[] {
    const conf = queueKey(queue, 'conf')
    return this.split ? [conf, queueKey(queue, 'moving')] : [conf]
  }

  /**
   * An operation followed by `WAIT <replicas> <timeout>` in one pipeline: on a cluster both go to
   * the node of the queue's slot. Fewer acknowledgements than asked fail the call.
   */
  async #confirmed(name: Name, queue: string, args: Arg[]): Promise<unknown> {
    if (this.#mode === undefined) await this.#choose()
    const keys = this.#keys(queue)
    const ns = this.split ? SPLIT_PREFIX : PREFIX
    const { count, timeoutMs } = this.#replicas
    const pipe = this.#redis.pipeline()
    if (this.#mode === 'function')
      pipe.fcall(load().library.functions.get(name)!, keys.length, ...keys, ns, queue, ...args)
    else pipe.evalsha(scriptSha(name), keys.length, ...keys, ns, queue, ...args)
    pipe.wait(count, timeoutMs)
    const replies = (await pipe.exec()) ?? []
    const [err, reply] = replies[0] ?? [new Error('the pipeline returned nothing')]
    if (err) {
      const message = String(err)
      if (/NOSCRIPT|function not found/i.test(message)) {
        // Not run: load the library (or the script) and send it again.
        this.#mode = undefined
        if (/NOSCRIPT/.test(message)) await this.#redis.script('LOAD', load().scripts.get(name)!)
        return this.#confirmed(name, queue, args)
      }
      throw err
    }
    const acked = replies[1]?.[1]
    if (typeof acked !== 'number' || acked < count)
      throw new ReplicationTimeout(name, count, typeof acked === 'number' ? acked : 0, timeoutMs)
    return reply
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

  /** Loads the library on the server, or on every master of a cluster. */
  async #load(): Promise<Mode> {
    const modes = await Promise.all(
      (await masters(this.#redis)).map(node =>
        node.function('LOAD', load().library.code).then(
          () => 'function' as const,
          (err: unknown) => {
            const message = String(err)
            if (/already exists/i.test(message)) return 'function' as const
            if (NO_FUNCTIONS.test(message)) return 'script' as const
            throw err
          },
        ),
      ),
    )
    return modes.includes('script') ? 'script' : 'function'
  }

  /**
   * 1 (stored) or 0 (duplicate) per task, the outcomes of `self`'s tasks that ended at once
   * (queue, id, outcome, …), which are not published, and the hand-overs owed (handover.ts).
   */
  enqueue(
    queue: string,
    self: string,
    tasks: readonly EnqueueEntry[],
    from = 0,
    to = tasks.length,
  ): Promise<[number[], string[], string[]]> {
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
    return this.#call('enqueue', queue, args) as Promise<[number[], string[], string[]]>
  }

  /**
   * Stale ids, reserved tasks (5 entries each: id, token, attempt, record, slots), nextDueIn, the
   * outcomes of `self`'s own tasks (queue, id, outcome, …), which are not published, and the
   * hand-overs owed (handover.ts).
   */
  exchange(
    queue: string,
    nonce: string,
    max: number,
    woken: boolean,
    self: string,
    worker: string,
    park: Park | undefined,
    times: string,
    done: readonly FinishEntry[],
  ): Promise<ExchangeReply> {
    const args: Arg[] = [
      nonce,
      max,
      woken ? '1' : '0',
      self,
      worker,
      park ? Math.round(park.ms) : 0,
      park ? Math.max(0, Math.floor(park.slots)) : 0,
      times,
      done.length,
    ]
    for (const f of done) args.push(f.id, f.token, f.outcome, f.retryAt ?? '')
    return this.#call('exchange', queue, args) as Promise<ExchangeReply>
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

  /**
   * How many lapsed tasks were handled (0 when another caller swept within `intervalMs`), and the
   * hand-overs to do: owed by its cascades, or owed too long (their caller died between steps).
   */
  sweep(queue: string, intervalMs: number, random: number): Promise<[number, string[]]> {
    return this.#call('sweep', queue, [Math.max(1, Math.round(intervalMs)), random]) as Promise<
      [number, string[]]
    >
  }

  /** 1 when cancelled, and the hand-overs owed. */
  cancel(queue: string, id: string): Promise<[number, string[]]> {
    return this.#call('cancel', queue, [id]) as Promise<[number, string[]]>
  }

  /** How many were cancelled, and the hand-overs owed. */
  purge(queue: string): Promise<[number, string[]]> {
    return this.#call('purge', queue, []) as Promise<[number, string[]]>
  }

  /**
   * Registers dependents of other queues on argument tasks of `queue` (link.lua): per link, ''
   * (registered) or the argument's outcome (it has ended).
   */
  link(queue: string, links: readonly Link[]): Promise<string[]> {
    const args: Arg[] = [links.length]
    for (const l of links) args.push(l.queue, l.id, l.slot, l.generation, l.argument)
    return this.#call('link', queue, args) as Promise<string[]>
  }

  /**
   * Fills argument slots of `queue`'s tasks with outcomes from other queues and drops owed
   * hand-overs that are done (fill.lua): the outcomes of `self`'s tasks that ended, and the
   * hand-overs the cascade owes.
   */
  fill(
    queue: string,
    self: string,
    fills: readonly Fill[],
    drop: readonly string[],
  ): Promise<[string[], string[]]> {
    const args: Arg[] = [self, fills.length]
    for (const f of fills) args.push(f.id, f.slot, f.generation, f.outcome)
    args.push(drop.length, ...drop)
    return this.#call('fill', queue, args) as Promise<[string[], string[]]>
  }

  /** null, an outcome string, or 'P' / 'E' / 'R' (pending, enqueued, processing). */
  status(queue: string, id: string): Promise<string | null> {
    return this.#call('status', queue, [id]) as Promise<string | null>
  }

  /** Enqueued + delayed + pending. */
  size(queue: string): Promise<number> {
    return this.#call('size', queue, []) as Promise<number>
  }

  /** [waiting, delayed, pending, processing, oldest ready ms or -1, now, [id, json, …], paused]. */
  inspect(
    queue: string,
  ): Promise<[number, number, number, number, number, number, string[], number]> {
    return this.#call('inspect', queue, []) as Promise<
      [number, number, number, number, number, number, string[], number]
    >
  }

  /** Registers a worker for `ttlMs`, or removes it with `ttlMs` 0. */
  registerWorker(queue: string, id: string, ttlMs: number, info: string): Promise<unknown> {
    return this.#call('register-worker', queue, [id, Math.round(ttlMs), info])
  }

  /** Stores progress; returns the progress of `self`'s own tasks (queue, id, 'p' + value, …). */
  progress(
    queue: string,
    self: string,
    updates: ReadonlyArray<{ id: string; token: string; value: string }>,
  ): Promise<string[]> {
    const args: Arg[] = [self, updates.length]
    for (const u of updates) args.push(u.id, u.token, u.value)
    return this.#call('progress', queue, args) as Promise<string[]>
  }

  /** null, or [record, tokens value | false, progress | false, due | false]. */
  info(queue: string, id: string): Promise<InfoReply | null> {
    return this.#call('info', queue, [id]) as Promise<InfoReply | null>
  }

  /** One step of a listing (list.lua): ['off'], or [matches, skipped, next | false]. */
  list(queue: string, step: ListStep): Promise<ListReply> {
    return this.#call('list', queue, [
      step.statuses,
      step.name,
      step.max,
      step.min,
      step.skip,
      step.want,
      step.first ? '1' : '0',
      step.budget,
    ]) as Promise<ListReply>
  }

  /** Sets settings (field, value, …); returns the settings hash, flat. */
  configure(queue: string, fields: Arg[]): Promise<string[]> {
    return this.#call('configure', queue, ['set', ...fields]) as Promise<string[]>
  }

  /** Pauses or resumes; 1 when the state changed. */
  pause(queue: string, paused: boolean): Promise<number> {
    return this.#call('configure', queue, [paused ? 'pause' : 'resume']) as Promise<number>
  }

  /** Sets (JSON) or removes ('') a limit; 1 when something changed. */
  limit(queue: string, name: string, spec: string): Promise<number> {
    return this.#call('limit', queue, [name, spec]) as Promise<number>
  }

  /** The result cache: delete one key (1/0), clear (how many), size. */
  cache(queue: string, action: 'delete' | 'clear' | 'size', cacheKey = ''): Promise<number> {
    return this.#call('cache', queue, [action, cacheKey]) as Promise<number>
  }

  /** Stores a schedule's definition and state. */
  putSchedule(queue: string, id: string, definition: string, state: string): Promise<unknown> {
    return this.#call('schedule', queue, ['put', id, definition, state])
  }

  /** Removes a schedule; 1 when there was one. */
  removeSchedule(queue: string, id: string): Promise<number> {
    return this.#call('schedule', queue, ['remove', id]) as Promise<number>
  }

  /** The totals and the minutes from the window's first (or the first not folded) to now. */
  metrics(queue: string, minutes: number): Promise<MetricsReply> {
    return this.#call('metrics', queue, [minutes]) as Promise<MetricsReply>
  }

  /** Fires a schedule's due time (with a task, or skips it without one): [acted, mine]. */
  fireSchedule(
    queue: string,
    id: string,
    due: number,
    next: number | null,
    self: string,
    task: EnqueueEntry | null,
  ): Promise<[number, string[], string[]]> {
    const args: Arg[] = ['fire', id, String(due), next === null ? '' : String(next), self]
    if (task) args.push(task.id, task.runAt, task.body, task.meta)
    return this.#call('schedule', queue, args) as Promise<[number, string[], string[]]>
  }
}

/**
 * The namespace argument of a call that must keep to its queue's slot (common.lua): a Deferred
 * argument on another queue is then handed over in two steps (handover.ts).
 */
const SPLIT_PREFIX = `${PREFIX}!`
