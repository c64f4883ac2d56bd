import { storedBackoff, type NewTask } from '../../lib/backends/backend.js'

/**
 * A task as a broker would hand it to a backend: name `func`, no arguments, one attempt, results
 * kept 10 s, heartrate 10 s; `extra` overrides.
 */
export function newTask(id: string, extra: Partial<NewTask> = {}): NewTask {
  return {
    id,
    name: 'func',
    payload: '[]',
    deps: [],
    onError: 'fail',
    ignoreResult: false,
    resultTimeout: 10_000,
    heartrate: 10_000,
    attempts: 1,
    backoff: storedBackoff(undefined),
    runAt: 0,
    timeout: 0,
    priority: 0,
    metadata: '',
    cache: undefined,
    trace: '',
    ...extra,
  }
}
