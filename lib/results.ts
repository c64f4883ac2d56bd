/**
 * The result hub: one per backend instance. It hands outcomes the backend delivers to the live
 * Deferreds waiting for them, and re-checks waiters after a gap in delivery (a reconnect).
 *
 * Memory per outstanding Deferred is one map entry and a WeakRef; a Deferred nobody holds any more
 * is forgotten by the FinalizationRegistry. No connection or timer is spent per Deferred.
 */
import { type Deferred, settle } from './deferred.js'
import type { Backend } from './backends/backend.js'

const key = (queue: string, id: string) => `${queue}\u0000${id}`

export class ResultHub {
  #backend: Backend
  #open = new Map<string, Array<WeakRef<Deferred<unknown>>>>()
  #waited = new Set<Deferred<unknown>>()
  #ready: Promise<void> | undefined
  #forget = new FinalizationRegistry<string>(k => {
    const refs = this.#open.get(k)?.filter(r => r.deref() !== undefined)
    if (refs?.length) this.#open.set(k, refs)
    else this.#open.delete(k)
  })
  /** Increments on every gap in delivery. */
  epoch = 0

  constructor(backend: Backend) {
    this.#backend = backend
  }

  /** Resolves once outcomes of later enqueues are sure to be delivered. */
  ready(): Promise<void> {
    this.#ready ??= this.#backend.listen(
      (queue, id, outcome) => this.#deliver(queue, id, outcome),
      () => this.#gap(),
    )
    return this.#ready
  }

  /**
   * Tracks a Deferred before its enqueue is sent, so an outcome delivered before the enqueue's
   * reply (a fast worker, another connection) still reaches it.
   */
  track(d: Deferred<unknown>): void {
    const k = key(d.queue, d.id)
    const refs = this.#open.get(k)
    if (refs) refs.push(new WeakRef(d))
    else this.#open.set(k, [new WeakRef(d)])
    this.#forget.register(d, k, d)
  }

  /** Stops tracking a Deferred whose enqueue was refused. */
  untrack(d: Deferred<unknown>): void {
    const k = key(d.queue, d.id)
    const refs = this.#open.get(k)?.filter(r => r.deref() !== d)
    if (refs?.length) this.#open.set(k, refs)
    else this.#open.delete(k)
    this.#forget.unregister(d)
  }

  /** Number of tracked, unsettled Deferreds (for tests and metrics). */
  get outstanding(): number {
    return this.#open.size
  }

  waiting(d: Deferred<unknown>): () => void {
    this.#waited.add(d)
    return () => this.#waited.delete(d)
  }

  #deliver(queue: string, id: string, outcome: string): void {
    const k = key(queue, id)
    const refs = this.#open.get(k)
    if (!refs) return
    this.#open.delete(k)
    for (const ref of refs) {
      const d = ref.deref()
      if (!d) continue
      this.#forget.unregister(d)
      settle(d, outcome)
    }
  }

  #gap(): void {
    this.epoch++
    for (const d of this.#waited) void d.recheck().catch(() => undefined)
  }
}
