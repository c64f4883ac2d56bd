/**
 * The enqueue path of a Broker: a call's options resolved, its arguments awaited and encoded, the
 * task checked against the backend's payload limit, traced, and put in this tick's batch (or in
 * the caller's transaction), with the Deferred that waits for its result.
 */
import type { BackendHandle } from './backends/index.js'
import type { Backend, NewTask, TransactionalBackend } from './backends/backend.js'
import { closeWaits, Deferred, type DeferredHost, markUnconfirmed } from './deferred.js'
import { DuplicateTask, PayloadTooLarge, TransactionsUnsupported } from './errors.js'
import { checkId, newTaskId, resolveOptions, type ResolvedOptions } from './options.js'
import type { TaskOptions, TransactionClient } from './types.js'
import { resolveArgs } from './resolve-args.js'
import type { ResultHub } from './results.js'
import { CallBatcher } from './batcher.js'
import { checkVisible, encodeTask } from './encode-task.js'
import { startEnqueue, type EnqueueSpan } from './tracing.js'
import { toTaskInfo } from './task-info.js'
import { enqueueInTx } from './tx-batcher.js'

/** How the enqueue path reaches its broker's backend. @internal */
export interface EnqueueSource {
  /** Throws `BrokerClosed` once the broker is closed. */
  open(): void
  /** The backend once open (the hot path skips awaiting `ready()`), else undefined. */
  opened(): BackendHandle | undefined
  /** The backend, once open; rejects with `BrokerClosed` once the broker is closed. */
  ready(): Promise<BackendHandle>
}

/** Turns the calls of one broker's queue into tasks, batched per tick. @internal */
export class Enqueuer {
  readonly #queue: string
  readonly #source: EnqueueSource
  readonly #batcher: CallBatcher
  /** Calls waiting for the backend to open or its result hub to listen, not yet submitted. */
  #waiting = 0
  /** Of those, the calls that wait for the hub (a result-bearing call, and any call after it). */
  #waitingHub = 0

  /** Enqueues on queue `queue` of the backend `source` opens. */
  constructor(queue: string, source: EnqueueSource) {
    this.#queue = queue
    this.#source = source
    this.#batcher = new CallBatcher(queue)
  }

  /**
   * Enqueues one call. The common case (no promise among the arguments, the backend open and
   * listening) makes one promise per call: this runs once per call on the producer's hot path,
   * and every promise costs more while async context tracking is on.
   */
  enqueue(
    path: string,
    rawArgs: unknown[],
    defaults: TaskOptions,
    options?: TaskOptions,
  ): Promise<Deferred<unknown> | undefined> {
    try {
      this.#source.open()
      const opts = options ? resolveOptions(defaults, options) : resolvedDefaults(defaults)
      const args = resolveArgs(rawArgs)
      if (args instanceof Promise) return args.then(a => this.#encode(path, a, opts))
      return this.#encode(path, args, opts)
    } catch (err) {
      return Promise.reject(err)
    }
  }

  /**
   * Puts a task encoded elsewhere (a retry's, under a new id) in this tick's batch once the
   * backend listens; settles when the batch's enqueue answers.
   */
  async resubmit(task: NewTask): Promise<void> {
    const handle = await this.#source.ready()
    if (!task.ignoreResult) await handle.hub.ready()
    const { backend, hub } = handle
    const deferred = task.ignoreResult
      ? undefined
      : new Deferred<unknown>(this.#host(hub, backend), this.#queue, task.name, task.id)
    await this.#batcher.add(backend, hub, task, deferred)
  }

  /** Resolves once the batches under way have been sent and answered. */
  drain(): Promise<void> {
    return this.#batcher.drain()
  }

  /** The broker closed: the waits on its Deferreds under way reject with `err` (BrokerClosed). */
  close(err: Error): void {
    if (this.#hostCache && this.#hub) closeWaits(this.#hub.waited(), this.#hostCache, err)
  }

  /** Encodes a call whose arguments are values, then submits it once the backend listens. */
  #encode(
    path: string,
    args: unknown[],
    opts: ResolvedOptions,
  ): Promise<Deferred<unknown> | undefined> {
    // An id worq makes needs no check (the hot path); one the caller gives or makes does.
    const id =
      opts.id === undefined
        ? newTaskId()
        : checkId(typeof opts.id === 'function' ? opts.id(...args) : opts.id)
    const open = this.#source.opened()
    if (open && this.#waiting === 0 && (opts.ignoreResult || open.hub.listening))
      return this.#submit(open, path, id, args, opts)
    // Calls that wait go in the order they were made: an ignoreResult call (which needs no hub)
    // made after one that waits for the hub waits for it too, rather than overtake it.
    const hub = !opts.ignoreResult || this.#waitingHub > 0
    this.#waiting++
    if (hub) this.#waitingHub++
    let waits = true
    const submitted = () => {
      if (!waits) return
      waits = false
      this.#waiting--
      if (hub) this.#waitingHub--
    }
    return this.#source
      .ready()
      .then(async handle => {
        if (hub) await handle.hub.ready()
        try {
          return this.#submit(handle, path, id, args, opts)
        } finally {
          submitted() // in the batch now (or refused): later calls may take the fast path
        }
      })
      .finally(submitted)
  }

  /** Puts an encoded call in this tick's batch; settles when the batch's enqueue answers. */
  #submit(
    handle: BackendHandle,
    path: string,
    id: string,
    args: unknown[],
    opts: ResolvedOptions,
  ): Promise<Deferred<unknown> | undefined> {
    const { backend, hub } = handle
    const task = encodeTask(path, id, args, opts, Date.now())
    if (task.deps.length > 0) checkVisible(path, args, backend)
    const limit = backend.limits.maxPayloadBytes
    if (task.payload.length > limit / 4 && Buffer.byteLength(task.payload) > limit)
      throw new PayloadTooLarge(`the arguments of ${path}`, Buffer.byteLength(task.payload), limit)
    const deferred = opts.ignoreResult
      ? undefined
      : new Deferred<unknown>(this.#host(hub, backend), this.#queue, path, id)
    const span = startEnqueue(this.#queue, path, id, args)
    if (opts.tx) {
      if (span.carried) task.trace = span.carried
      return ended(span, this.#enqueueIn(opts.tx, backend, hub, task, deferred))
    }
    if (!span.carried) return this.#batcher.add(backend, hub, task, deferred)
    task.trace = span.carried
    return ended(span, this.#batcher.add(backend, hub, task, deferred))
  }

  /**
   * Enqueues one task in the caller's transaction `tx` (postgres:// only), with the other calls
   * on that client that wait for its statement under way (lib/tx-batcher.ts).
   */
  async #enqueueIn(
    tx: TransactionClient,
    backend: Backend,
    hub: ResultHub,
    task: NewTask,
    deferred: Deferred<unknown> | undefined,
  ): Promise<Deferred<unknown> | undefined> {
    if (typeof (backend as Partial<TransactionalBackend>).enqueueIn !== 'function')
      throw new TransactionsUnsupported(backend.url)
    // Held weakly: a transaction that rolls back leaves a task that never existed. Until the
    // backend shows the task, an unknown id is a transaction not committed yet, not an expiry.
    if (deferred) {
      markUnconfirmed(deferred)
      hub.trackWeakly(deferred)
    }
    let outcome: 'ok' | 'duplicate'
    try {
      outcome = await enqueueInTx(tx, backend as TransactionalBackend, this.#queue, task)
    } catch (err) {
      if (deferred) hub.untrack(deferred)
      throw err
    }
    if (outcome === 'duplicate') {
      if (deferred) hub.untrack(deferred)
      throw new DuplicateTask(task.name, this.#queue, task.id)
    }
    return deferred
  }

  #hostCache: DeferredHost | undefined
  /** The hub of the host's Deferreds (whose waits a close ends). */
  #hub: ResultHub | undefined
  #host(hub: ResultHub, backend: Backend): DeferredHost {
    const source = this.#source
    this.#hub ??= hub
    this.#hostCache ??= {
      get epoch() {
        return hub.epoch
      },
      open: () => source.open(),
      status: async (queue, id) => {
        source.open()
        return backend.status(queue, id)
      },
      cancel: async (queue, id) => {
        source.open()
        return backend.cancel(queue, id)
      },
      info: async (queue, id) => {
        source.open()
        const stored = await backend.info(queue, id)
        return stored ? toTaskInfo(stored, queue) : undefined
      },
      waitStarted: d => hub.waitStarted(d),
      waitEnded: d => hub.waitEnded(d),
      store: backend,
    }
    return this.#hostCache
  }
}

/** `enqueued`, ending `span` when it settles. */
function ended(
  span: EnqueueSpan,
  enqueued: Promise<Deferred<unknown> | undefined>,
): Promise<Deferred<unknown> | undefined> {
  return enqueued.then(
    d => {
      span.end(d)
      return d
    },
    (err: unknown) => {
      span.end(undefined, err)
      throw err
    },
  )
}

/** A queue's defaults, resolved once (calls without per-call options share them). */
const resolved = new WeakMap<TaskOptions, ResolvedOptions>()
function resolvedDefaults(defaults: TaskOptions): ResolvedOptions {
  let r = resolved.get(defaults)
  if (!r) resolved.set(defaults, (r = resolveOptions(defaults)))
  return r
}
