/**
 * Limits and the result cache of a memory:// queue, with the semantics docs/limits.md and
 * docs/cache.md give (the Redis scripts do the same in Lua).
 */
import { bindingLimits, rateWindowMs, type Limit } from '../backend.js'
import { Lines } from './lines.js'
import type { CacheEntry, QueueState, TaskRecord } from './queue-state.js'

/** Why a task may not start now: a full concurrency limit, or a rate limit until `until`. */
export type Blocked = { limit: string } | { until: number } | undefined

/**
 * Checks every limit that binds `rec`; when none blocks it, takes a slot of each (concurrency) and
 * counts the start (rate), and returns undefined.
 */
export function takeSlots(q: QueueState, rec: TaskRecord, now: number): Blocked {
  if (q.limits.size === 0) return undefined
  const names = bindingLimits(Object.fromEntries(q.limits), rec.task.name)
  if (names.length === 0) return undefined
  for (const name of names) {
    const limit = q.limits.get(name)!
    if (limit.concurrency !== undefined && (q.holders.get(name)?.size ?? 0) >= limit.concurrency)
      return { limit: name }
    if (limit.rate) {
      const window = rateWindowMs(limit.rate.per)
      const starts = (q.starts.get(name) ?? []).filter(t => t > now - window)
      q.starts.set(name, starts)
      if (starts.length >= limit.rate.max) return { until: starts[0]! + window }
    }
  }
  for (const name of names) {
    const limit = q.limits.get(name)!
    if (limit.concurrency !== undefined) {
      let holders = q.holders.get(name)
      if (!holders) q.holders.set(name, (holders = new Set()))
      holders.add(rec.task.id)
    }
    if (limit.rate) q.starts.get(name)!.push(now)
  }
  rec.holds = names.filter(n => q.limits.get(n)!.concurrency !== undefined)
  return undefined
}

/**
 * Gives back the slots `rec` holds; for each freed slot, the first task waiting for that limit
 * goes back to the front of its priority in the wait line. Returns whether any went back.
 */
export function freeSlots(q: QueueState, rec: TaskRecord): boolean {
  const holds = rec.holds
  rec.holds = undefined
  if (!holds) return false
  let woke = false
  for (const name of holds) {
    q.holders.get(name)?.delete(rec.task.id)
    if (q.holders.get(name)?.size === 0) q.holders.delete(name)
    const waiting = q.held.get(name)
    const next = waiting?.shift()
    if (waiting && waiting.size === 0) q.held.delete(name)
    if (next === undefined) continue
    const waiter = q.records.get(next)
    if (!waiter || waiter.state !== 'held') continue
    waiter.state = 'enqueued'
    waiter.heldBy = undefined
    q.wait.unshift(next, waiter.task.priority)
    woke = true
  }
  return woke
}

/** Puts `rec` aside until a slot of `limit` frees. */
export function hold(q: QueueState, rec: TaskRecord, limit: string): void {
  rec.state = 'held'
  rec.heldBy = limit
  let line = q.held.get(limit)
  if (!line) q.held.set(limit, (line = new Lines()))
  line.push(rec.task.id, rec.task.priority)
}

/** Drops expired entries of the cache. */
export function expireCache(q: QueueState, now: number): void {
  for (const [key, e] of q.cache) if (e.expiresAt <= now) q.cache.delete(key)
}

/** The live cached entry under `key`, marked as just used; undefined when there is none. */
export function cacheHit(q: QueueState, key: string, now: number): CacheEntry | undefined {
  const e = q.cache.get(key)
  if (!e) return undefined
  q.cache.delete(key)
  if (e.expiresAt <= now) return undefined
  q.cache.set(key, e)
  return e
}

/** Stores a completed outcome under `key`, evicting the least recently used past the size bound. */
export function cacheStore(
  q: QueueState,
  key: string,
  outcome: string,
  ttl: number,
  now: number,
): void {
  q.cache.delete(key)
  q.cache.set(key, { outcome, expiresAt: now + ttl })
  trimCache(q, now)
}

/** Drops expired entries, then the least recently used ones past the size bound. */
export function trimCache(q: QueueState, now: number): void {
  expireCache(q, now)
  for (const key of q.cache.keys()) {
    if (q.cache.size <= q.settings.cacheSize) break
    q.cache.delete(key)
  }
}

/**
 * Sets or (with `null`) removes the limit `name`; a removed limit's waiting tasks go back to the
 * front of their line. True when the limit changed.
 */
export function setLimit(q: QueueState, name: string, limit: Limit | null): boolean {
  const had = q.limits.get(name)
  if (limit === null) {
    if (!had) return false
    q.limits.delete(name)
    q.holders.delete(name)
    q.starts.delete(name)
    // Tasks that waited for this limit go back to the front of their line.
    const waiting = q.held.get(name)
    q.held.delete(name)
    for (const id of [...(waiting ?? [])].reverse()) {
      const rec = q.records.get(id)
      if (!rec || rec.state !== 'held') continue
      rec.state = 'enqueued'
      rec.heldBy = undefined
      q.wait.unshift(id, rec.task.priority)
    }
    q.wake()
    return true
  }
  q.limits.set(name, { ...limit })
  q.wake() // a raised limit may let tasks start
  return JSON.stringify(had) !== JSON.stringify(limit)
}
