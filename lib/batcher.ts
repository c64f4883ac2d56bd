/**
 * The calls of one tick, sent to the backend as one enqueue: a broker puts each encoded task here
 * and gets a promise that settles when the backend answered for it.
 */
import type { Backend, NewTask } from './backends/backend.js'
import type { Deferred } from './deferred.js'
import { DuplicateTask } from './errors.js'
import type { ResultHub } from './results.js'

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

/** Batches the calls of one tick per queue. */
export class CallBatcher {
  #batch: Pending[] = []
  /** Calls made since this tick's flush was scheduled. */
  #tickCalls = 0
  /** Enqueues of batches under way. */
  #flushing = 0

  constructor(private readonly queue: string) {}

  /** Adds a task to this tick's batch; settles when the batch's enqueue answers. */
  add(
    backend: Backend,
    hub: ResultHub,
    task: NewTask,
    deferred: Deferred<unknown> | undefined,
  ): Promise<Deferred<unknown> | undefined> {
    if (deferred) hub.track(deferred)
    return new Promise((resolve, reject) => {
      this.#batch.push({ task, deferred, hub, resolve, reject })
      if (++this.#tickCalls === 1)
        setImmediate(() => {
          this.#tickCalls = 0
          void this.#flush(backend)
        })
      else if (this.#partEnds(backend)) void this.#flush(backend)
    })
  }

  /**
   * Whether this call ends a part of the tick: its first (`enqueueFirst`), or one of the backend's
   * parts after it (`enqueuePart`). A tick's batch goes to the backend when the tick ends, except
   * the parts its backend asks for: on Redis a wave of calls (many waiters answered together, each
   * calling again) reaches it in parts, and Redis works on one while this process makes the next.
   */
  #partEnds(backend: Backend): boolean {
    const first = backend.enqueueFirst ?? Infinity
    const calls = this.#tickCalls
    if (calls <= first) return calls === first
    const part = backend.enqueuePart
    return part !== undefined && (calls - first) % part === 0
  }

  async #flush(backend: Backend): Promise<void> {
    const batch = this.#batch
    this.#batch = []
    if (batch.length === 0) return
    this.#flushing++
    let outcomes: Array<'ok' | 'duplicate'>
    try {
      outcomes = await backend.enqueue(
        this.queue,
        batch.map(p => p.task),
      )
    } catch (err) {
      for (const p of batch) fail(p, err)
      return
    } finally {
      this.#flushing--
    }
    batch.forEach((p, i) => {
      if (outcomes[i] === 'duplicate')
        fail(p, new DuplicateTask(p.task.name, this.queue, p.task.id))
      else p.resolve(p.deferred)
    })
  }

  /** Resolves once every batch added so far has been answered. */
  async drain(): Promise<void> {
    while (this.#batch.length > 0 || this.#flushing > 0) await new Promise(r => setImmediate(r))
  }
}
