/**
 * The page's calls to the JSON API (lib/http/types.ts describes every answer). Paths are relative,
 * so the page works wherever the handler is mounted. The token, when the server asks for one, is
 * kept in sessionStorage (this tab only, no cookie) and sent as a bearer header.
 */
import type {
  ConfigJson,
  ErrorJson,
  MetricsJson,
  QueueJson,
  SubmitJson,
  TaskJson,
  TypeJson,
  WorkerJson,
} from '../../lib/http/types.js'

const TOKEN_KEY = 'worq.token'

/** The token this tab signed in with, if any. */
export function token(): string | null {
  return sessionStorage.getItem(TOKEN_KEY)
}

/** Keeps (or with null forgets) the token for this tab. */
export function setToken(value: string | null): void {
  if (value === null) sessionStorage.removeItem(TOKEN_KEY)
  else sessionStorage.setItem(TOKEN_KEY, value)
}

/** The headers every API call sends. */
export function authHeaders(): Record<string, string> {
  const t = token()
  return t ? { Authorization: `Bearer ${t}` } : {}
}

/** An answer that was not a success. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message)
  }
}

/** Listeners told when the server asks for a token (a 401). */
const onUnauthorized = new Set<() => void>()
export function whenUnauthorized(fn: () => void): () => void {
  onUnauthorized.add(fn)
  return () => onUnauthorized.delete(fn)
}

async function call<T>(method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { Accept: 'application/json', ...authHeaders() }
  if (body !== undefined) headers['Content-Type'] = 'application/json'
  const res = await fetch(path, {
    method,
    headers,
    body: body === undefined ? null : JSON.stringify(body),
  })
  const data = (await res.json().catch(() => null)) as unknown
  if (!res.ok) {
    const err = (data as ErrorJson | null)?.error
    if (res.status === 401) for (const fn of onUnauthorized) fn()
    throw new ApiError(res.status, err?.code ?? 'ERR_HTTP', err?.message ?? res.statusText)
  }
  return data as T
}

const qs = (params: Record<string, string | number | undefined>) => {
  const p = new URLSearchParams()
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== '') p.set(k, String(v))
  const s = p.toString()
  return s ? `?${s}` : ''
}

/** A page of tasks. */
export interface TaskQuery {
  queue: string
  status?: string
  name?: string
  limit: number
  offset: number
}

export const api = {
  config: () => call<ConfigJson>('GET', 'api/config'),
  queues: () => call<QueueJson[]>('GET', 'api/queues'),
  workers: () => call<WorkerJson[]>('GET', 'api/workers'),
  types: (queue: string) => call<TypeJson[]>('GET', `api/types${qs({ queue })}`),
  metrics: (queue: string) => call<MetricsJson>('GET', `api/metrics${qs({ queue, minutes: 60 })}`),
  tasks: (q: TaskQuery) => call<TaskJson[]>('GET', `api/tasks${qs({ ...q })}`),
  task: (queue: string, id: string) =>
    call<TaskJson>('GET', `api/tasks/${encodeURIComponent(id)}${qs({ queue })}`),
  cancel: (queue: string, id: string) =>
    call<{ cancelled: boolean }>('DELETE', `api/tasks/${encodeURIComponent(id)}${qs({ queue })}`),
  retry: (queue: string, id: string) =>
    call<TaskJson>('POST', `api/tasks/${encodeURIComponent(id)}/retry${qs({ queue })}`),
  submit: (body: SubmitJson) => call<TaskJson>('POST', 'api/tasks', body),
  pause: (queue: string) => call<unknown>('POST', `api/queues/${encodeURIComponent(queue)}/pause`),
  resume: (queue: string) =>
    call<unknown>('POST', `api/queues/${encodeURIComponent(queue)}/resume`),
  purge: (queue: string) =>
    call<{ purged: number }>(
      'DELETE',
      `api/queues/${encodeURIComponent(queue)}/tasks${qs({ confirm: queue })}`,
    ),
}
