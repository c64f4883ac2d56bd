/**
 * `broker.cache`: the queue's result cache (docs/cache.md) — invalidating one call's entry,
 * clearing, counting, and its size bound and default TTL, stored in the backend.
 */
import type { Backend, QueueSettings } from '../backends/backend.js'
import { resolveArgs } from '../resolve-args.js'
import { callCacheKey } from '../encode-task.js'
import { encodeCall } from '../serializer.js'
import { callInfo } from '../queue.js'
import { checkSettings } from './settings.js'

/** The result cache of one queue. */
export class BrokerCache {
  /** @internal Made by the broker. */
  constructor(
    private readonly queue: string,
    private readonly backend: () => Promise<Backend>,
  ) {}

  /**
   * Sets the cache's bound (`size`, entries; least recently used evicted first) and the TTL of a
   * `cache: true` call (`ttl`, ms), for every process of the queue.
   */
  async configure(options: {
    /** Most entries. */
    size?: number
    /** ms a `cache: true` result lives. */
    ttl?: number
  }): Promise<{
    /** Most entries. */
    size: number
    /** ms a `cache: true` result lives. */
    ttl: number
  }> {
    if (typeof options !== 'object' || options === null)
      throw new TypeError('Expected cache options like { size: 10000, ttl: 3600000 }')
    for (const k of Object.keys(options))
      if (k !== 'size' && k !== 'ttl')
        throw new TypeError(`Unknown cache option \`${k}\`; known: size, ttl`)
    const patch: Partial<QueueSettings> = {}
    if (options.size !== undefined) patch.cacheSize = options.size
    if (options.ttl !== undefined) patch.cacheTtl = options.ttl
    const s = await (await this.backend()).configure(this.queue, checkSettings(patch))
    return { size: s.cacheSize, ttl: s.cacheTtl }
  }

  /**
   * Drops the cached result of `fn(...args)` (`fn` a queue function such as `q.math.add`); true when
   * there was one. Arguments are taken by value, as the cache keys them.
   */
  async invalidate(fn: unknown, ...args: unknown[]): Promise<boolean> {
    const info = callInfo(fn)
    if (!info) throw new TypeError('Expected `fn` to be a queue function like q.math.add')
    const values = await resolveArgs(args)
    const { payload, deps } = encodeCall(values)
    if (deps.length > 0)
      throw new TypeError(
        'Expected the arguments to be values: a Deferred argument must have completed (await d.wait(ms)) before its call can be invalidated',
      )
    const { key } = callCacheKey(info.path, values, payload, [])
    return (await this.backend()).cacheDelete(this.queue, key)
  }

  /** Drops every cached result of the queue; returns how many. */
  async clear(): Promise<number> {
    return (await this.backend()).cacheClear(this.queue)
  }

  /** How many results the cache holds now. */
  async size(): Promise<number> {
    return (await this.backend()).cacheSize(this.queue)
  }
}
