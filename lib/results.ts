/**
 * The result hub: one per backend instance. It hands outcomes the backend delivers to the
 * Deferreds made by this process's enqueues, and re-checks waiters after a gap in delivery (a
 * reconnect).
 *
 * A Deferred is held here from its enqueue until its outcome arrives: one map entry each, no
 * connection and no timer per Deferred. (Weak references were tried and cost more in garbage
 * collection than they saved; every task ends — completed, failed, expired or cancelled — so the
 * entry always goes.) Two exceptions are held weakly, for as long as the caller holds them: a
 * Deferred enqueued in the caller's transaction (`tx`), whose task never existed when the
 * transaction rolled back; and, after a gap in delivery (a reconnect), every Deferred nobody was
 * waiting on, whose outcome may have been published during the gap and will not come again (a
 * later wait fetches it: its epoch is older than the hub's). The entries of a closed backend go
 * with its hub.
 */
import { type Deferred, reportProgress, settle } from './deferred.js'
import type { Backend } from './backends/backend.js'
import { decodeValue } from './serializer.js'

/** The first retry of a failed re-check after a gap in delivery, ms (then doubling)… */
const RECHECK_FIRST_MS = 100
/** …up to this, ms. */
const RECHECK_MAX_MS = 5000

/** Unsettled Deferreds of one queue by id (usually one each; more when an id was reused). */
type Held = Map<string, Deferred<unknown> | Deferred<unknown>[]>

export class ResultHub {
  #backend: Backend
  /** Unsettled Deferreds by queue, then id (no key built per call). */
  #open = new Map<string, Held>()
  /** Deferreds enqueued in a caller's transaction, by queue, then id: held weakly (see above). */
  #weak = new Map<string, Map<string, WeakRef<Deferred<unknown>>>>()
  /** Drops the entry of a weakly held Deferred the caller let go of. */
  #collected = new FinalizationRegistry<{ queue: string; id: string; ref: WeakRef<object> }>(
    ({ queue, id, ref }) => {
      const weak = this.#weak.get(queue)
      if (weak?.get(id) === ref) weak.delete(id)
      if (weak?.size === 0) this.#weak.delete(queue)
    },
  )
  #waited = new Set<Deferred<unknown>>()
  #ready: Promise<void> | undefined
  /** Increments on every gap in delivery. */
  epoch = 0

  constructor(backend: Backend) {
    this.#backend = backend
  }

  /** The hub's listeners, the same ones on every try (a backend adds each once). */
  readonly #onOutcome = (queue: string, id: string, outcome: string) =>
    this.#deliver(queue, id, outcome)
  readonly #onGap = () => this.#gap()

  /** Resolves once outcomes of later enqueues are sure to be delivered. */
  ready(): Promise<void> {
    this.#ready ??= this.#backend.listen(this.#onOutcome, this.#onGap).then(
      () => {
        this.#listening = true
      },
      (err: unknown) => {
        // The server was away (BackendUnreachable): the next call tries again.
        this.#ready = undefined
        throw err
      },
    )
    return this.#ready
  }

  #listening = false
  /** True once `ready()` has resolved: outcomes of later enqueues will be delivered. */
  get listening(): boolean {
    return this.#listening
  }

  /**
   * Tracks a Deferred before its enqueue is sent, so an outcome delivered before the enqueue's
   * reply (a fast worker, another connection) still reaches it.
   */
  track(d: Deferred<unknown>): void {
    let open = this.#open.get(d.queue)
    if (!open) this.#open.set(d.queue, (open = new Map()))
    const held = open.get(d.id)
    if (held === undefined) open.set(d.id, d)
    else open.set(d.id, Array.isArray(held) ? [...held, d] : [held, d])
  }

  /**
   * Tracks a Deferred enqueued in the caller's transaction, weakly: an outcome reaches it while the
   * caller holds it, and a Deferred whose transaction rolled back goes once the caller lets it go.
   */
  trackWeakly(d: Deferred<unknown>): void {
    let weak = this.#weak.get(d.queue)
    if (!weak) this.#weak.set(d.queue, (weak = new Map()))
    const ref = new WeakRef(d)
    weak.set(d.id, ref)
    this.#collected.register(d, { queue: d.queue, id: d.id, ref }, ref)
  }

  /** Stops tracking a Deferred whose enqueue was refused. */
  untrack(d: Deferred<unknown>): void {
    const weak = this.#weak.get(d.queue)
    const ref = weak?.get(d.id)
    if (ref?.deref() === d) {
      weak!.delete(d.id)
      this.#collected.unregister(ref)
      return
    }
    const open = this.#open.get(d.queue)
    const held = open?.get(d.id)
    if (held === d) open!.delete(d.id)
    else if (Array.isArray(held)) {
      const rest = held.filter(x => x !== d)
      if (rest.length === 1) open!.set(d.id, rest[0]!)
      else open!.set(d.id, rest)
    }
  }

  /** The Deferreds waited on now (between their `waitStarted` and `waitEnded`). */
  waited(): Iterable<Deferred<unknown>> {
    return this.#waited
  }

  /**
   * Marks `d` as waited on: a gap in delivery re-checks it, and its broker's close ends its waits.
   * A Deferred counts its own overlapping waits and calls this once, when the first begins.
   */
  waitStarted(d: Deferred<unknown>): void {
    this.#waited.add(d)
  }

  /** Unmarks `d`: the last of its waits under way ended. */
  waitEnded(d: Deferred<unknown>): void {
    this.#waited.delete(d)
  }

  /**
   * An outcome (`c`, `f`, `x`, `k`; `C` is a completed outcome that came from the result cache) or
   * a progress value (`p`) of a task enqueued here.
   */
  #deliver(queue: string, id: string, outcome: string): void {
    const open = this.#open.get(queue)
    const held = open?.get(id) ?? this.#weakly(queue, id, outcome)
    if (held === undefined) return
    const kind = outcome.charAt(0)
    if (kind === 'p') {
      let value: unknown
      try {
        value = decodeValue(outcome.slice(1))
      } catch {
        return // not a value worq wrote
      }
      if (Array.isArray(held)) for (const d of held) reportProgress(d, value)
      else reportProgress(held, value)
      return
    }
    open?.delete(id)
    const cached = kind === 'C'
    const stored = cached ? 'c' + outcome.slice(1) : outcome
    if (Array.isArray(held)) for (const d of held) settle(d, stored, cached)
    else settle(held, stored, cached)
  }

  /**
   * The weakly held Deferred of `queue` and `id`, if the caller still holds it; its entry goes
   * when `outcome` ends it (or when it was let go of).
   */
  #weakly(queue: string, id: string, outcome: string): Deferred<unknown> | undefined {
    const weak = this.#weak.get(queue)
    const ref = weak?.get(id)
    if (!ref) return undefined
    const d = ref.deref()
    if (!d || outcome.charAt(0) !== 'p') {
      weak!.delete(id)
      this.#collected.unregister(ref)
    }
    return d
  }

  #gap(): void {
    this.epoch++
    for (const d of this.#waited) this.#recheck(d, 0)
    // The others' outcomes may have gone by: hold them weakly from now on (a rare event, so the
    // weak references' cost is paid once per gap, not per call).
    for (const [queue, open] of this.#open) {
      for (const [id, held] of open) {
        // (An id shared by several Deferreds, a reused id, stays held: rare, and one weak entry
        // per id could not hold them all.)
        if (Array.isArray(held) || this.#waited.has(held)) continue
        open.delete(id)
        this.trackWeakly(held)
      }
      if (open.size === 0) this.#open.delete(queue)
    }
  }

  /**
   * Re-checks a waiter after a gap. A re-check that fails (the command connection is still
   * reconnecting, a failover is under way) is tried again, RECHECK_FIRST_MS doubling up to
   * RECHECK_MAX_MS, for as long as the Deferred is waited for: an outcome published during the
   * gap is read from the backend, or the waiter would wait out its whole timeout.
   */
  #recheck(d: Deferred<unknown>, tries: number): void {
    d.recheck().catch(() => {
      if (!this.#waited.has(d)) return
      const ms = Math.min(RECHECK_FIRST_MS * 2 ** tries, RECHECK_MAX_MS)
      setTimeout(() => {
        if (this.#waited.has(d)) this.#recheck(d, tries + 1)
      }, ms).unref()
    })
  }
}
