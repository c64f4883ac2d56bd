/**
 * Broker: one queue name on one backend URL. It exposes functions to the workers of this process,
 * turns calls into tasks (resolving promise arguments, serializing, batching the calls of one tick
 * into one backend round trip), and hands back Deferreds.
 */
import { nanoid } from 'nanoid'
import { openBackend, checkUrl, type BackendHandle, type BackendOptions } from './backends/index.js'
import type { Backend, NewTask } from './backends/backend.js'
import { Deferred, type DeferredHost } from './deferred.js'
import { BrokerClosed, DuplicateTask, PayloadTooLarge } from './errors.js'
import { checkId, checkOptions, resolveOptions } from './options.js'
import { makeQueue, type Queue, type QueueHost } from './queue.js'
import { encodeCall } from './serializer.js'
import { TaskSpace, checkName } from './taskspace.js'
import type { TaskFunction, TaskOptions } from './types.js'
import { resolveArgs } from './resolve-args.js'
import type { ResultHub } from './results.js'

/** Options of `expose`. */
export interface ExposeOptions {
  /** Replace functions already exposed under the same names instead of throwing. @default false */
  replace?: boolean
}

/** TaskOptions with the defaults filled in. */
type Resolved = ReturnType<typeof resolveOptions>

/** A call, encoded, before it becomes a task. */
interface Call {
  path: string
  id: string
  payload: string
  deps: NewTask['deps']
  opts: Resolved
}

/**
 * A tick's batch goes to the backend when the tick ends, except its first this-many calls, which
 * go at once: a wave of calls (many waiters answered together, each calling again) then reaches
 * Redis in two parts, and Redis works on the first while this process makes the rest.
 */
const EARLY_FLUSH = 25

/** A call in the batch of this tick, waiting for the enqueue's answer. */
interface Pending {
  task: NewTask
  /** Its Deferred (none with ignoreResult), tracked by `hub` from before the enqueue is sent. */
  deferred: Deferred<unknown> | undefined
  hub: ResultHub
  resolve: (d: Deferred<unknown> | undefined) => void
  reject: (err: unknown) => void
}

/** Rejects a call of a batch: its Deferred is no longer tracked. */
function fail(p: Pending, err: unknown): void {
  if (p.deferred) p.hub.untrack(p.deferred)
  p.reject(err)
}

/** A queue name on a backend: expose functions, make queues, size, purge, close. */
export class Broker implements QueueHost {
  /** The backend URL. */
  readonly url: string
  /** The queue name. */
  readonly name: string
  readonly #handle: Promise<BackendHandle>
  /** The backend once open (the hot path of enqueue skips awaiting #handle). */
  #opened: BackendHandle | undefined
  readonly #tasks = new Map<string, TaskFunction>()
  #closed = false
  #batch: Pending[] = []
  /** Calls made since this tick's flush was scheduled. */
  #tickCalls = 0
  /** Enqueues of batches under way. */
  #flushing = 0

  /** Use {@link getBroker}. */
  constructor(url: string, name = 'default', options: BackendOptions = {}) {
    checkUrl(url)
    checkName(name, 'name')
    this.url = url
    this.name = name
    this.#handle = openBackend(url, options)
    this.#handle.then(
      handle => (this.#opened = handle),
      () => undefined,
    )
  }

  /**
   * Makes functions callable by this broker's workers: a TaskSpace (all its functions, under its
   * namespace) or one named function. Exposing a name twice throws unless `replace` is set.
   */
  expose(spaceOrFn: TaskSpace<string, any> | TaskFunction, options: ExposeOptions = {}): this {
    this.#open()
    const entries =
      spaceOrFn instanceof TaskSpace
        ? [...spaceOrFn.tasks]
        : [...new TaskSpace('').task(spaceOrFn as TaskFunction).tasks]
    if (!options.replace) {
      for (const [name] of entries) {
        if (this.#tasks.has(name))
          throw new TypeError(
            `task "${name}" is already exposed on this broker; pass { replace: true } to replace it`,
          )
      }
    }
    for (const [name, fn] of entries) this.#tasks.set(name, fn)
    return this
  }

  /** The function exposed under `name`, if any. Only own entries of the registry count. @internal */
  lookup(name: string): TaskFunction | undefined {
    return this.#tasks.get(name)
  }

  /**
   * The Proxy Queue: `q.math.add(1, 2)` enqueues `math.add`. `target` prefixes every path;
   * `options` are defaults for every call made through it.
   */
  queue<S = never, Target extends string = ''>(
    target: Target = '' as Target,
    options?: TaskOptions,
  ): Queue<S, Target> {
    checkName(target, 'target', true)
    return makeQueue(this, target, checkOptions(options)) as Queue<S, Target>
  }

  /** Tasks waiting to run: enqueued, delayed and pending dependents. */
  async size(): Promise<number> {
    const { backend } = await this.#ready()
    return backend.size(this.name)
  }

  /** Discards every waiting task; their Deferreds and dependents become `cancelled`. Returns how many. */
  async purge(): Promise<number> {
    const { backend } = await this.#ready()
    return backend.purge(this.name)
  }

  /** Releases this broker's hold on the backend. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    const handle = await this.#handle.catch(() => undefined)
    await this.#drain()
    await handle?.release()
  }

  /** True once `close()` was called. */
  get closed(): boolean {
    return this.#closed
  }

  /** The backend and its result hub, once open. @internal */
  async backend(): Promise<{ backend: Backend; hub: ResultHub }> {
    return this.#ready()
  }

  async #ready(): Promise<BackendHandle> {
    this.#open()
    return this.#handle
  }

  #open(): void {
    if (this.#closed) throw new BrokerClosed()
  }

  /**
   * @internal Enqueues one call. The common case (no promise among the arguments, the backend
   * open and listening) makes one promise per call: this runs once per call on the producer's hot
   * path, and every promise costs more while async context tracking is on.
   */
  enqueue(
    path: string,
    rawArgs: unknown[],
    defaults: TaskOptions,
    options?: TaskOptions,
  ): Promise<Deferred<unknown> | undefined> {
    try {
      this.#open()
      const opts = options ? resolveOptions(defaults, options) : resolvedDefaults(defaults)
      const args = resolveArgs(rawArgs)
      if (args instanceof Promise) return args.then(a => this.#encode(path, a, opts))
      return this.#encode(path, args, opts)
    } catch (err) {
      return Promise.reject(err)
    }
  }

  /** Encodes a call whose arguments are values, then submits it once the backend listens. */
  #encode(path: string, args: unknown[], opts: Resolved): Promise<Deferred<unknown> | undefined> {
    const id = checkId(typeof opts.id === 'function' ? opts.id(...args) : (opts.id ?? nanoid()))
    const { payload, deps } = encodeCall(args)
    const call = { path, id, payload, deps, opts }
    const open = this.#opened
    if (open && (opts.ignoreResult || open.hub.listening)) return this.#submit(open, call)
    return this.#ready().then(async handle => {
      if (!opts.ignoreResult) await handle.hub.ready()
      return this.#submit(handle, call)
    })
  }

  /** Puts an encoded call in this tick's batch; settles when the batch's enqueue answers. */
  #submit(handle: BackendHandle, call: Call): Promise<Deferred<unknown> | undefined> {
    const { backend, hub } = handle
    const { path, id, payload, deps, opts } = call
    const limit = backend.limits.maxPayloadBytes
    if (payload.length > limit / 4 && Buffer.byteLength(payload) > limit)
      throw new PayloadTooLarge(`the arguments of ${path}`, Buffer.byteLength(payload), limit)
    const task: NewTask = {
      id,
      name: path,
      payload,
      deps,
      onError: opts.onError,
      ignoreResult: opts.ignoreResult,
      resultTimeout: opts.resultTimeout,
      heartrate: opts.heartrate,
      attempts: opts.attempts,
      backoff: opts.backoff,
      runAt: opts.runAt(Date.now()),
      timeout: opts.timeout,
    }
    const deferred = opts.ignoreResult
      ? undefined
      : new Deferred<unknown>(this.#host(hub, backend), this.name, path, id)
    if (deferred) hub.track(deferred)
    return new Promise((resolve, reject) => {
      this.#batch.push({ task, deferred, hub, resolve, reject })
      if (++this.#tickCalls === 1)
        setImmediate(() => {
          this.#tickCalls = 0
          void this.#flush(backend)
        })
      else if (this.#tickCalls === EARLY_FLUSH) void this.#flush(backend)
    })
  }

  async #flush(backend: Backend): Promise<void> {
    const batch = this.#batch
    this.#batch = []
    if (batch.length === 0) return
    this.#flushing++
    let outcomes: Array<'ok' | 'duplicate'>
    try {
      outcomes = await backend.enqueue(
        this.name,
        batch.map(p => p.task),
      )
    } catch (err) {
      for (const p of batch) fail(p, err)
      return
    } finally {
      this.#flushing--
    }
    batch.forEach((p, i) => {
      if (outcomes[i] === 'duplicate') fail(p, new DuplicateTask(p.task.name, this.name, p.task.id))
      else p.resolve(p.deferred)
    })
  }

  async #drain(): Promise<void> {
    while (this.#batch.length > 0 || this.#flushing > 0) await new Promise(r => setImmediate(r))
  }

  #hostCache: DeferredHost | undefined
  #host(hub: ResultHub, backend: Backend): DeferredHost {
    this.#hostCache ??= {
      get epoch() {
        return hub.epoch
      },
      status: (queue, id) => backend.status(queue, id),
      cancel: (queue, id) => backend.cancel(queue, id),
      waiting: d => hub.waiting(d),
    }
    return this.#hostCache
  }
}

/** A queue's defaults, resolved once (calls without per-call options share them). */
const resolved = new WeakMap<TaskOptions, Resolved>()
function resolvedDefaults(defaults: TaskOptions): Resolved {
  let r = resolved.get(defaults)
  if (!r) resolved.set(defaults, (r = resolveOptions(defaults)))
  return r
}

/**
 * A new Broker for queue `name` on the backend at `url` (`memory://`, `redis://…`, `rediss://…`).
 * Brokers with the same URL in one process share one backend.
 */
export function getBroker(url: string, name = 'default', options?: BackendOptions): Broker {
  return new Broker(url, name, options)
}

/** Shorthand for `getBroker(url, name).queue(target, options)`. */
export function getQueue<S = never, Target extends string = ''>(
  url: string,
  name = 'default',
  target: Target = '' as Target,
  options?: TaskOptions,
): Queue<S, Target> {
  return getBroker(url, name).queue<S, Target>(target, options)
}
