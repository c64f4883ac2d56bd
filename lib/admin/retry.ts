/** What `broker.retry()` enqueues again, and the task types `broker.types()` reports. */
import {
  storedBackoff,
  type NewTask,
  type StoredCall,
  type StoredInfo,
  type WorkerInfo,
} from '../backends/backend.js'

/**
 * The task that runs an ended task's call again under `id`: the same name, arguments and options,
 * priority and metadata included; not from the cache, not traced.
 */
export function retryTask(info: StoredInfo, c: StoredCall, id: string): NewTask {
  return {
    id,
    name: info.name,
    payload: c.payload,
    deps: c.deps,
    onError: c.onError,
    ignoreResult: c.ignoreResult,
    resultTimeout: c.resultTimeout,
    heartrate: c.heartrate,
    attempts: c.attempts,
    backoff: storedBackoff(c.backoff),
    runAt: 0,
    timeout: c.timeout,
    priority: info.priority,
    metadata: info.metadata ?? '',
    cache: undefined,
    trace: '',
  }
}

/** Every task name the live workers expose, with how many expose it, by name. */
export function taskTypes(
  workers: readonly WorkerInfo[],
): Array<{ name: string; workers: number }> {
  const counts = new Map<string, number>()
  for (const w of workers) for (const n of new Set(w.names)) counts.set(n, (counts.get(n) ?? 0) + 1)
  return [...counts]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([name, workers]) => ({ name, workers }))
}
