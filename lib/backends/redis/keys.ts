/**
 * Every Redis key worq uses, built in one place. Each queue's keys carry the hash tag `{<queue>}`,
 * so that one queue lives in one Cluster slot. The Lua scripts build the same names with `key()` in
 * scripts/common.lua, which mirrors {@link queueKey} (on one server also for another queue's keys:
 * a Deferred argument may live there; on a cluster that is a hand-over, docs/cluster.md);
 * docs/redis.md lists every key, its type and its lifetime.
 */

/** The namespace every key and channel starts with. */
export const PREFIX = 'worq'

/** The suffixes of a queue's own keys, one per structure. */
export type QueueKeyName =
  | 'wait'
  | 'delayed'
  | 'pending'
  | 'leases'
  | 'tokens'
  | 'dependents'
  | 'wake'
  | 'sweep'
  | 'swept'
  | 'workers'

/** `worq:{<queue>}:<suffix>`. */
export function queueKey(queue: string, suffix: string): string {
  return `${PREFIX}:{${queue}}:${suffix}`
}

/** The task record (while it lives) and then its outcome (for `resultTimeout`): a string. */
export function taskKey(queue: string, id: string): string {
  return queueKey(queue, `t:${id}`)
}

/** The argument slots of a task with Deferred arguments: a hash. */
export function slotsKey(queue: string, id: string): string {
  return queueKey(queue, `s:${id}`)
}

/** The queue-wide keys, by name. */
export function queueKeys(queue: string): Record<QueueKeyName, string> {
  return {
    wait: queueKey(queue, 'wait'),
    delayed: queueKey(queue, 'delayed'),
    pending: queueKey(queue, 'pending'),
    leases: queueKey(queue, 'leases'),
    tokens: queueKey(queue, 'tokens'),
    dependents: queueKey(queue, 'dependents'),
    wake: queueKey(queue, 'wake'),
    sweep: queueKey(queue, 'sweep'),
    swept: queueKey(queue, 'swept'),
    workers: queueKey(queue, 'workers'),
  }
}

/** The pattern matching every key of a queue (for tests and `worq info`). */
export function queuePattern(queue: string): string {
  return `${PREFIX}:{${queue.replace(/[*?[\]\\]/g, c => `\\${c}`)}}:*`
}

/** The pub/sub channel outcomes of a client's tasks are published on. */
export function outcomeChannel(clientId: string): string {
  return `${PREFIX}:out:${clientId}`
}
