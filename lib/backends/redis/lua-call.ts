/**
 * How the Lua operations reach Redis. With the shared helpers of common.lua and ready.lua they
 * make one Redis function library (FUNCTION LOAD, Redis 7+), loaded once per server and called
 * with FCALL, so a call runs only its own code. Where functions are unavailable (Redis 6.2, an ACL
 * without FUNCTION, or `redisFunctions: false`) each operation is a script of its own, helpers
 * included, sent with EVALSHA (ioredis `defineCommand`, EVAL on NOSCRIPT). The first call finds
 * out which; with `replicas` set, a call that stores tasks or outcomes is followed by WAIT.
 */
import type { Cluster } from 'ioredis'
import { PREFIX, queueKey } from './keys.js'
import { checkServer } from './checks.js'
import { told } from './reach.js'
import type { Connection } from './connections.js'
import { BackendFull, ReplicationTimeout } from '../../errors.js'
import { command, functionLibrary, type Name, NAMES, script } from './lua-source.js'
import { ioredis } from './ioredis.js'

/** An ARGV value of an operation. */
export type Arg = string | number
type Call = (...args: Arg[]) => Promise<unknown>

/** `flat()` of command arguments already flat: the array itself (LuaCaller#fcall). */
function itself(this: Arg[]): Arg[] {
  return this
}

/** How operations reach Redis: FCALL of the function library, or EVALSHA of whole scripts. */
type Mode = 'function' | 'script'

/** FUNCTION LOAD refused: a server without functions, or a user who may not load them. */
const NO_FUNCTIONS = /unknown command|NOPERM/i
/** FCALL refused before it ran: a user who may not call functions. */
const NO_FCALL = /NOPERM.*'fcall'/i

/** Redis refused a command because it is out of memory (maxmemory under noeviction). */
const OOM = /^(ReplyError: )?OOM /

/**
 * `err`, or BackendFull when Redis refused `operation` for want of memory, or BackendUnreachable
 * when the server was away past the connection's bound (reach.ts).
 */
function full(err: unknown, operation: string, redis: Connection): unknown {
  return OOM.test(String(err)) ? new BackendFull(operation, { cause: err }) : told(redis, err)
}

/**
 * Operations whose writes `replicas` waits for: those that store tasks or outcomes, and the two
 * steps of a hand-over between slots (link, fill: the owing queue drops its record only after a
 * step is confirmed, so a step lost in a failover is done again by the sweep, not forgotten).
 */
const CONFIRMED: ReadonlySet<Name> = new Set(['enqueue', 'exchange', 'schedule', 'link', 'fill'])

/** A cluster node's answer that it did not run a command, and what kind. */
const REDIRECTED = /^(MOVED|ASK|TRYAGAIN|CLUSTERDOWN)\b/
type Redirect = 'MOVED' | 'ASK' | 'TRYAGAIN' | 'CLUSTERDOWN'

/** What a call returned on the master when its WAIT then fell short, by the error that said so. */
const written = new WeakMap<ReplicationTimeout, unknown>()

/**
 * The reply of the call that failed with `err`, when the call ran on the master and only its WAIT
 * fell short (its writes hold there, unconfirmed); undefined for any other error.
 */
export function unconfirmedReply(err: unknown): unknown {
  return err instanceof ReplicationTimeout ? written.get(err) : undefined
}

/** The masters of a cluster (once it knows them), or the one server. */
async function masters(conn: Connection): Promise<Connection[]> {
  if (!conn.isCluster) return [conn]
  const redis = conn as Cluster
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

/** Calls the operations on one command connection, by FCALL or EVALSHA. */
export class LuaCaller {
  readonly #redis: Connection
  /** Undefined until the first call finds out (and again after a server lost the library). */
  #mode: Mode | undefined
  #loading: Promise<void> | undefined
  /** Whether the scripts' commands are defined on this connection (the first time it needs them). */
  #scriptsDefined = false

  readonly #functions: boolean
  readonly #replicas: { count: number; timeoutMs: number }
  /** Cross-queue hand-overs go in two steps (a cluster: a call keeps to its queue's slot). */
  readonly #split: boolean

  /**
   * `functions` false: never load the function library; send scripts with EVALSHA. `replicas`:
   * how many replicas must acknowledge a call that stores tasks or outcomes (WAIT), and how long
   * they may take. `split`: calls keep to their queue's slot (see #keys and SPLIT_PREFIX).
   */
  constructor(
    redis: Connection,
    options: { functions: boolean; replicas: { count: number; timeoutMs: number }; split: boolean },
  ) {
    this.#redis = redis
    this.#functions = options.functions
    this.#replicas = options.replicas
    this.#split = options.split
  }

  /** Sends operations as scripts from now on (their commands defined on the connection once). */
  #useScripts(): void {
    if (!this.#scriptsDefined) {
      // No fixed key count: a call declares one key, or two on a cluster (see #keys).
      for (const name of NAMES) this.#redis.defineCommand(command(name), { lua: script(name).lua })
      this.#scriptsDefined = true
    }
    this.#mode = 'script'
  }

  /**
   * Calls an operation of `queue`. Its one declared key is a key of the queue (every key a call
   * touches is in the queue's slot, save a Deferred argument's on another queue). `retried`: this
   * is the call sent again after the server said it had not run it.
   */
  call(name: Name, queue: string, args: Arg[], retried = false): Promise<unknown> {
    if (this.#replicas.count > 0 && CONFIRMED.has(name)) return this.#confirmed(name, queue, args)
    const keys = this.#keys(queue)
    const ns = this.#split ? SPLIT_PREFIX : PREFIX
    if (this.#mode === 'script') {
      const fn = (this.#redis as unknown as Record<string, Call>)[command(name)]!
      return fn
        .call(this.#redis, keys.length, ...keys, ns, queue, ...args)
        .catch((err: unknown) => {
          throw full(err, name, this.#redis)
        })
    }
    if (this.#mode === 'function') {
      const fname = functionLibrary().functions.get(name)!
      return this.#fcall(fname, keys, ns, queue, args).catch((err: unknown) => {
        // The call did not run. A server restarted without persistence, or FUNCTION FLUSH: load
        // again. A user who may load functions but not call them: scripts from now on.
        if (retried) throw full(err, name, this.#redis)
        const message = String(err)
        if (NO_FCALL.test(message)) this.#useScripts()
        else if (/function not found/i.test(message)) this.#mode = undefined
        else throw full(err, name, this.#redis)
        return this.call(name, queue, args, true)
      })
    }
    return this.#choose().then(() => this.call(name, queue, args, retried))
  }

  /**
   * FCALL of function `fname`, its arguments handed to ioredis as one array. (ioredis' generated
   * `fcall(...args)` takes them as a rest parameter, then its Command copies them with
   * `args.flat()`, which V8 runs at about 0.25 µs an element: 26 µs for a call carrying 25 tasks,
   * a microsecond per task on the producer's hot path. These are flat already.)
   */
  #fcall(fname: string, keys: string[], ns: string, queue: string, args: Arg[]): Promise<unknown> {
    const argv: Arg[] = [fname, keys.length, ...keys, ns, queue]
    for (let i = 0; i < args.length; i++) argv.push(args[i]!)
    ;(argv as unknown as { flat: () => Arg[] }).flat = itself
    const redis = this.#redis
    return redis.sendCommand(
      new (ioredis().Command)('fcall', argv, {
        replyEncoding: 'utf8',
        errorStack: redis.options.showFriendlyErrorStack ? new Error() : undefined,
      }),
    ) as Promise<unknown>
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
    return this.#split ? [conf, queueKey(queue, 'moving')] : [conf]
  }

  /**
   * An operation followed by `WAIT <replicas> <timeout>` in one pipeline: on a cluster both go to
   * the node of the queue's slot. Fewer acknowledgements than asked fail the call; the call ran, and
   * its reply stays readable through {@link unconfirmedReply}.
   */
  async #confirmed(name: Name, queue: string, args: Arg[], redirections = 0): Promise<unknown> {
    if (this.#mode === undefined) await this.#choose()
    const keys = this.#keys(queue)
    const ns = this.#split ? SPLIT_PREFIX : PREFIX
    const { count, timeoutMs } = this.#replicas
    const pipe = this.#redis.pipeline()
    if (this.#mode === 'function')
      pipe.fcall(functionLibrary().functions.get(name)!, keys.length, ...keys, ns, queue, ...args)
    else pipe.evalsha(script(name).sha, keys.length, ...keys, ns, queue, ...args)
    pipe.wait(count, timeoutMs)
    const replies = (await pipe.exec()) ?? []
    const [err, reply] = replies[0] ?? [new Error('the pipeline returned nothing')]
    if (err) {
      const message = String(err)
      if (/NOSCRIPT|function not found/i.test(message)) {
        // Not run: load the library (or the script) and send it again.
        this.#mode = undefined
        if (/NOSCRIPT/.test(message)) await this.#redis.script('LOAD', script(name).lua)
        return this.#confirmed(name, queue, args, redirections)
      }
      // A cluster node that did not run it: the slot moved, is moving, or the cluster is down for
      // a moment. ioredis follows these for a lone command, but not for a pipeline whose other
      // command (WAIT) succeeded: follow them here, as it would, and send both again.
      const redirect = REDIRECTED.exec((err as Error).message ?? '')
      if (redirect && redirections < this.#maxRedirections()) {
        await this.#redirected(redirect[1] as Redirect)
        return this.#confirmed(name, queue, args, redirections + 1)
      }
      throw full(err, name, this.#redis)
    }
    const acked = replies[1]?.[1]
    if (typeof acked !== 'number' || acked < count) {
      const err = new ReplicationTimeout(
        name,
        count,
        typeof acked === 'number' ? acked : 0,
        timeoutMs,
      )
      written.set(err, reply)
      throw err
    }
    return reply
  }

  /** How many redirections a call follows: the cluster's `maxRedirections` (16 by default). */
  #maxRedirections(): number {
    return (this.#redis.options as { maxRedirections?: number }).maxRedirections ?? 16
  }

  /**
   * Waits as ioredis does before sending a redirected call again: after a MOVED or CLUSTERDOWN the
   * slots are read again (the call then goes to the slot's new owner); an ASK or TRYAGAIN (the
   * slot is migrating) waits `retryDelayOnTryAgain`, until the migration ends in a MOVED.
   */
  async #redirected(kind: Redirect): Promise<void> {
    const options = this.#redis.options as {
      retryDelayOnTryAgain?: number
      retryDelayOnClusterDown?: number
      retryDelayOnMoved?: number
    }
    const ms =
      kind === 'MOVED'
        ? (options.retryDelayOnMoved ?? 0)
        : kind === 'CLUSTERDOWN'
          ? (options.retryDelayOnClusterDown ?? 100)
          : (options.retryDelayOnTryAgain ?? 100)
    if (ms > 0) await new Promise(resolve => setTimeout(resolve, ms))
    const cluster = this.#redis as { refreshSlotsCache?: (done: (err?: Error) => void) => void }
    if ((kind === 'MOVED' || kind === 'CLUSTERDOWN') && cluster.refreshSlotsCache)
      await new Promise<void>(resolve => cluster.refreshSlotsCache!(() => resolve()))
  }

  /**
   * Checks the server's version (UnsupportedServer when it is too old), then loads the library (one
   * FUNCTION LOAD for all callers at once) or settles for scripts.
   */
  #choose(): Promise<void> {
    this.#loading ??= checkServer(this.#redis)
      .then(() => (this.#functions ? this.#load() : ('script' as const)))
      .then(mode => {
        if (mode === 'script') this.#useScripts()
        else this.#mode = mode
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
        node.function('LOAD', functionLibrary().code).then(
          () => 'function' as const,
          (err: unknown) => {
            const message = String(err)
            if (/already exists/i.test(message)) return 'function' as const
            if (NO_FUNCTIONS.test(message)) return 'script' as const
            throw full(err, 'FUNCTION LOAD', node)
          },
        ),
      ),
    )
    return modes.includes('script') ? 'script' : 'function'
  }
}

/**
 * The namespace argument of a call that must keep to its queue's slot (common.lua): a Deferred
 * argument on another queue is then handed over in two steps (handover.ts).
 */
const SPLIT_PREFIX = `${PREFIX}!`
