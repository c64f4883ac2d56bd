/**
 * Broker: one queue name on one backend URL. It exposes functions to the workers of this process,
 * turns calls into tasks (resolving promise arguments, serializing, batching the calls of one tick
 * into one backend round trip), hands back Deferreds, retries ended tasks, streams the queue's
 * events and owns the backend handle until close. Managing the queue (its tasks, settings, pause,
 * limits, schedules, metrics) is QueueAdmin's (admin/queue-admin.ts); the result cache is
 * BrokerCache's.
 */
import { openBackend, checkUrl, type BackendHandle, type BackendOptions } from './backends/index.js'
import type { Backend } from './backends/backend.js'
import type { Deferred } from './deferred.js'
import { BrokerClosed, NotRetryable } from './errors.js'
import { checkId, checkOptions, newTaskId } from './options.js'
import { makeQueue, type Queue, type QueueHost } from './queue.js'
import { TaskSpace, checkName } from './taskspace.js'
import type { TaskFunction, TaskOptions, TransactionClient } from './types.js'
import type { ResultHub } from './results.js'
import { Enqueuer } from './enqueue.js'
import { BrokerCache } from './admin/cache.js'
import { QueueAdmin } from './admin/queue-admin.js'
import { retryTask } from './admin/retry.js'
import { EventStream, type EventsOptions } from './events/stream.js'

/** Options of `expose`. */
export interface ExposeOptions {
  /** Replace functions already exposed under the same names instead of throwing. @default false */
  replace?: boolean
}

/** A queue name on a backend: expose functions, make queues, manage the queue, close. */
export class Broker extends QueueAdmin implements QueueHost {
  /** The backend URL. */
  readonly url: string
  /** The queue name. */
  override readonly name: string
  /** The queue's result cache: `invalidate`, `clear`, `size`, `configure`. */
  readonly cache: BrokerCache
  readonly #handle: Promise<BackendHandle>
  /** The backend once open (the hot path of enqueue skips awaiting #handle). */
  #opened: BackendHandle | undefined
  readonly #tasks = new Map<string, TaskFunction>()
  readonly #enqueuer: Enqueuer
  #closed = false
  /** Aborts at `close()`, its reason a `BrokerClosed`: this broker's event streams end with it. */
  readonly #closing = new AbortController()

  /** Use {@link getBroker}. */
  constructor(url: string, name = 'default', options: BackendOptions = {}) {
    checkUrl(url, options)
    checkName(name, 'name')
    super()
    this.url = url
    this.name = name
    this.#handle = openBackend(url, options)
    this.#handle.then(
      handle => (this.#opened = handle),
      () => undefined,
    )
    this.#enqueuer = new Enqueuer(name, {
      open: () => this.#open(),
      opened: () => this.#opened,
      ready: () => this.#ready(),
    })
    this.cache = new BrokerCache(this.name, () => this.#ready().then(h => h.backend))
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

  /** The names exposed on this broker. @internal */
  exposed(): string[] {
    return [...this.#tasks.keys()]
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

  /**
   * A Proxy Queue whose calls all enqueue inside the caller's transaction on `client` (a
   * node-postgres client after `BEGIN`), as the `tx` option does for one call: the tasks exist if
   * and only if the transaction commits. postgres:// only; elsewhere calls fail with
   * `TransactionsUnsupported`.
   */
  transaction<S = never, Target extends string = ''>(
    client: TransactionClient,
    target: Target = '' as Target,
    options?: TaskOptions,
  ): Queue<S, Target> {
    return this.queue<S, Target>(target, { ...options, tx: client })
  }

  /**
   * Enqueues again, with a new id, a task that failed, expired or was cancelled: the same name,
   * arguments and options (priority and metadata included). Returns the new task's id, or
   * undefined when the backend knows nothing of `id`. Throws `NotRetryable` for a task that has
   * not ended that way, or whose call was not kept.
   */
  async retry(id: string): Promise<string | undefined> {
    checkId(id)
    const backend = await this.#backend()
    const info = await backend.info(this.name, id)
    if (!info) return undefined
    if (!['failed', 'expired', 'cancelled'].includes(info.status) || !info.call)
      throw new NotRetryable(info.name, this.name, id, info.status)
    const newId = newTaskId()
    await this.#enqueuer.resubmit(retryTask(info, info.call, newId))
    return newId
  }

  // ---- events ----

  /**
   * The queue's events, from every process: `for await (const e of broker.events())`, or
   * `.on(type, listener)`; `close()` stops it. `since` is `'now'` (the default) or an `eventId` to
   * resume after. See docs/events.md.
   */
  events(options: EventsOptions = {}): EventStream {
    this.#open() // a closed broker: BrokerClosed here, not a stream that fails later
    return new EventStream(this.#backend(), this.name, options, this.#closing.signal)
  }

  /**
   * Releases this broker's hold on the backend. Idempotent. From the call on, every operation of
   * the broker, of its Deferreds (those that hold no outcome yet) and of its event streams rejects
   * with `BrokerClosed`, and so do the waits on its Deferreds under way.
   */
  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    const reason = new BrokerClosed()
    this.#closing.abort(reason)
    this.#enqueuer.close(reason)
    const handle = await this.#handle.catch(() => undefined)
    await this.#enqueuer.drain()
    await handle?.release()
  }

  /** True once `close()` was called. */
  get closed(): boolean {
    return this.#closed
  }

  /** The backend and its result hub, once open. @internal */
  override async backend(): Promise<{ backend: Backend; hub: ResultHub }> {
    return this.#ready()
  }

  async #backend(): Promise<Backend> {
    return (await this.#ready()).backend
  }

  async #ready(): Promise<BackendHandle> {
    this.#open()
    return this.#handle
  }

  #open(): void {
    if (this.#closed) throw new BrokerClosed()
  }

  /** @internal Enqueues one call (enqueue.ts). */
  enqueue(...call: Parameters<QueueHost['enqueue']>): Promise<Deferred<unknown> | undefined> {
    return this.#enqueuer.enqueue(...call)
  }
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
