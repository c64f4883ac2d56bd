/**
 * The task flows of memory://: enqueue, readiness (the result cache and single flight), reserving
 * (priorities, pause, limits), finishing (the cascade down Deferred arguments and cache
 * followers), retry, cancel and progress. A worker's finishes are read in finishes.ts, its leases
 * renewed and swept in leases.ts. The Redis scripts do the same in Lua.
 */
import {
  readyCacheKey,
  leaseMs,
  type BackendLimits,
  type NewTask,
  type OutcomeListener,
  type ProgressUpdate,
  type ReservedTask,
} from '../backend.js'
import { cancelledOutcome, expiredOutcome } from '../../outcome.js'
import { countEnd, countStart, emit, endEvent } from './observe.js'
import { QueueState, type Dependent, type TaskRecord } from './queue-state.js'
import { cacheHit, cacheStore, freeSlots, hold, takeSlots } from './shaping.js'

const GONE = 'the argument task and its result are gone (its resultTimeout passed)'

/** How a task ends: from the cache, and the tag of the finishing (or cancelled) token. */
interface Ending {
  cached?: boolean
  tag?: string
}

/** A task that has just ended, whose dependents the cascade is still to go through. */
interface Ended {
  rec: TaskRecord
  outcome: string
  now: number
}

export class MemoryEngine {
  readonly queues = new Map<string, QueueState>()
  readonly listeners: OutcomeListener[] = []
  #tokens = 0

  constructor(readonly limits: BackendLimits) {}

  /** The queue's state, made on first use. */
  q(name: string): QueueState {
    let q = this.queues.get(name)
    if (!q) this.queues.set(name, (q = new QueueState()))
    return q
  }

  /** The live or kept record of a task, after lazily dropping an expired outcome. */
  get(queue: string, id: string): TaskRecord | undefined {
    const q = this.queues.get(queue)
    const r = q?.records.get(id)
    if (r && r.state === 'done' && (r.expiresAt ?? 0) <= Date.now()) {
      q!.records.delete(id)
      return undefined
    }
    return r
  }

  enqueue(queue: string, task: NewTask, now: number): 'ok' | 'duplicate' {
    const q = this.q(queue)
    const old = this.get(queue, task.id)
    if (old && old.state !== 'done') return 'duplicate'
    if (old) q.records.delete(task.id) // a reused id is listed as new
    const rec: TaskRecord = {
      task,
      queue,
      state: 'pending',
      attempt: 0,
      slots: task.deps.map(() => undefined),
      missing: 0,
      dependents: [],
      createdAt: now,
      listed: q.settings.listing,
    }
    q.records.set(task.id, rec)
    emit(q, 'enqueued', rec, now)
    for (let slot = 0; slot < task.deps.length; slot++) {
      const ref = task.deps[slot]!
      const arg = this.get(ref.queue, ref.id)
      if (arg && arg.state !== 'done') {
        arg.dependents.push({ queue, id: task.id, slot })
        rec.missing++
        continue
      }
      const outcome = arg?.outcome ?? expiredOutcome('unknown', ref.queue, ref.id, GONE)
      if (outcome.charAt(0) !== 'c' && task.onError === 'fail') {
        this.finish(rec, outcome, now)
        return 'ok'
      }
      rec.slots[slot] = outcome
    }
    if (rec.missing === 0) this.ready(q, rec, now)
    else q.pending.add(task.id)
    return 'ok'
  }

  /**
   * A task whose arguments are all there: a cache hit ends it, a live identical call takes it as a
   * follower, else it joins the line.
   */
  ready(q: QueueState, rec: TaskRecord, now: number): void {
    const ended = this.#readyStep(q, rec, now)
    if (ended) this.#cascade(ended)
  }

  /** ready() without the cascade: a cache hit's end is returned for the caller's. */
  #readyStep(q: QueueState, rec: TaskRecord, now: number): Ended | undefined {
    const cache = rec.task.cache
    if (cache) {
      const key =
        cache.key ||
        readyCacheKey(rec.task.name, rec.task.payload, cache.template, rec.slots as string[])
      rec.cacheKey = key
      const hit = cacheHit(q, key, now)
      if (hit) return this.#end(rec, hit.outcome, now, { cached: true })
      const leader = q.records.get(q.flights.get(key) ?? '')
      if (leader && leader !== rec && leader.state !== 'done') {
        leader.dependents.push({ queue: rec.queue, id: rec.task.id, slot: -1 })
        q.unlink(rec)
        rec.state = 'pending'
        q.pending.add(rec.task.id)
        return undefined
      }
      q.flights.set(key, rec.task.id)
    }
    this.line(q, rec, rec.task.runAt, now)
    return undefined
  }

  /** Puts a record in the wait line of its priority, or in the delayed set until `dueAt`. */
  line(q: QueueState, rec: TaskRecord, dueAt: number, now: number): void {
    q.unlink(rec)
    if (dueAt > now) {
      rec.state = 'delayed'
      rec.dueAt = dueAt
      q.delayed.add(rec.task.id)
    } else {
      rec.state = 'enqueued'
      rec.readyAt = now
      q.wait.push(rec.task.id, rec.task.priority)
    }
    q.wake()
  }

  /** Records an outcome, delivers it, frees limit slots, and fills (or fails) the dependents. */
  finish(rec: TaskRecord, outcome: string, now: number, how: Ending = {}): void {
    this.#cascade(this.#end(rec, outcome, now, how))
  }

  /** finish() without the dependents, which #cascade() goes through. */
  #end(rec: TaskRecord, outcome: string, now: number, how: Ending = {}): Ended {
    const q = this.q(rec.queue)
    const { id } = rec.task
    const ran = rec.state === 'processing' && rec.startedAt !== undefined
    q.unlink(rec)
    const woke = freeSlots(q, rec)
    rec.token = undefined
    rec.leaseUntil = undefined
    rec.finishedAt = now
    if (how.cached) rec.cached = true
    const kind = outcome.charAt(0)
    if (rec.cacheKey !== undefined) {
      if (q.flights.get(rec.cacheKey) === id) q.flights.delete(rec.cacheKey)
      if (kind === 'c' && !how.cached && rec.task.cache)
        cacheStore(q, rec.cacheKey, outcome, rec.task.cache.ttl || q.settings.cacheTtl, now)
    }
    endEvent(q, rec, outcome, now, how.cached === true)
    countEnd(q, kind, ran ? now - rec.startedAt! : undefined, now)
    if (rec.task.ignoreResult) {
      q.records.delete(id)
    } else {
      rec.state = 'done'
      rec.outcome = outcome
      rec.finishTag = how.tag
      rec.expiresAt = now + rec.task.resultTimeout
      // A completed task keeps no call: only one that did not complete may be retried by hand.
      if (kind === 'c') rec.task = { ...rec.task, payload: '' }
      const delivered = how.cached ? 'C' + outcome.slice(1) : outcome
      for (const l of this.listeners) l(rec.queue, id, delivered)
    }
    if (woke) q.wake()
    return { rec, outcome, now }
  }

  /**
   * Fills, fails or frees the dependents of a task that ended, and those of each that ends with
   * it: depth first, in the order each task's dependents were registered (as the other backends
   * do), with a stack of its own. A recursion overflowed the call stack under a chain of a few
   * thousand tasks whose first failed, and the task at its end never ended.
   */
  #cascade(first: Ended): void {
    const stack: Array<{ d: Dependent; outcome: string }> = []
    const push = ({ rec, outcome }: Ended) => {
      const ds = rec.dependents
      rec.dependents = []
      for (let i = ds.length - 1; i >= 0; i--) stack.push({ d: ds[i]!, outcome })
    }
    push(first)
    const { now } = first
    for (let top = stack.pop(); top; top = stack.pop()) {
      const { d, outcome } = top
      const ended =
        d.slot < 0
          ? this.#follow(d.queue, d.id, outcome, now)
          : this.#fill(d.queue, d.id, d.slot, outcome, now)
      if (ended) push(ended)
    }
  }

  /** Fills a dependent's slot; returns its end when it ended here (failed, or a cache hit). */
  #fill(queue: string, id: string, slot: number, outcome: string, now: number): Ended | undefined {
    const dep = this.get(queue, id)
    if (!dep || dep.state !== 'pending' || dep.slots[slot] !== undefined) return undefined
    if (outcome.charAt(0) !== 'c' && dep.task.onError === 'fail')
      return this.#end(dep, outcome, now)
    dep.slots[slot] = outcome
    return --dep.missing === 0 ? this.#readyStep(this.q(queue), dep, now) : undefined
  }

  /**
   * A cache follower: ends with its leader's value (returned), or runs on its own when the leader
   * did not complete.
   */
  #follow(queue: string, id: string, outcome: string, now: number): Ended | undefined {
    const f = this.get(queue, id)
    if (!f || f.state !== 'pending') return undefined
    if (outcome.charAt(0) === 'c') return this.#end(f, outcome, now, { cached: true })
    this.line(this.q(queue), f, f.task.runAt, now)
    return undefined
  }

  /** Reserves up to `max` ready tasks (none while paused); limited tasks that may not start wait aside. */
  reserve(q: QueueState, workerId: string, max: number, now: number): ReservedTask[] {
    const reserved: ReservedTask[] = []
    if (q.settings.paused) return reserved
    while (reserved.length < max) {
      const id = q.wait.shift()
      if (id === undefined) break
      const rec = q.records.get(id)!
      const blocked = takeSlots(q, rec, now)
      if (blocked && 'limit' in blocked) {
        hold(q, rec, blocked.limit)
        continue
      }
      if (blocked) {
        rec.state = 'delayed'
        rec.dueAt = blocked.until
        q.delayed.add(id)
        continue
      }
      rec.state = 'processing'
      rec.attempt++
      rec.token = `${workerId}:${++this.#tokens}`
      rec.leaseUntil = now + leaseMs(rec.task.heartrate)
      rec.startedAt = now
      rec.workerId = workerId
      q.processing.add(id)
      countStart(q, now - (rec.readyAt ?? rec.createdAt), now)
      emit(q, 'started', rec, now, { attempt: rec.attempt, workerId })
      reserved.push({
        ...rec.task,
        token: rec.token,
        attempt: rec.attempt,
        slots: rec.slots as string[],
        dueAt: rec.readyAt ?? rec.createdAt,
      })
    }
    return reserved
  }

  /** Puts a task that ran back in line for another attempt at `at`, with a `retrying` event. */
  retry(
    q: QueueState,
    rec: TaskRecord,
    at: number,
    error: { name: string; message: string; code?: string },
    now: number,
  ): void {
    const ran = rec.startedAt !== undefined ? now - rec.startedAt : undefined
    freeSlots(q, rec)
    rec.token = undefined
    rec.leaseUntil = undefined
    const { stack: _stack, ...brief } = error as typeof error & { stack?: string }
    emit(q, 'retrying', rec, now, {
      attempt: rec.attempt,
      ...(rec.workerId !== undefined && { workerId: rec.workerId }),
      delay: Math.max(0, at - now),
      error: brief,
      ...(ran !== undefined && { ms: ran }),
    })
    countEnd(q, 'r', ran, now)
    this.line(q, rec, at, now)
  }

  progress(queue: string, updates: readonly ProgressUpdate[], now: number): void {
    const q = this.q(queue)
    for (const u of updates) {
      const rec = q.records.get(u.id)
      if (!rec || rec.state !== 'processing' || rec.token !== u.token) continue
      rec.progress = u.value
      emit(q, 'progress', rec, now, {
        progress: u.value,
        attempt: rec.attempt,
        ...(rec.workerId !== undefined && { workerId: rec.workerId }),
      })
      if (!rec.task.ignoreResult) for (const l of this.listeners) l(queue, u.id, 'p' + u.value)
    }
  }

  /** Cancels a task that has not ended; a running one's worker is told. */
  cancel(queue: string, id: string, now: number): boolean {
    const rec = this.get(queue, id)
    if (!rec || rec.state === 'done') return false
    const token = rec.state === 'processing' ? rec.token : undefined
    this.finish(rec, cancelledOutcome(rec.task.name, queue, id), now, { tag: token })
    if (token !== undefined) this.q(queue).tell({ type: 'cancel', id })
    return true
  }
}
