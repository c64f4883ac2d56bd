/**
 * The route table and its matcher. A hand-written table rather than a router library: the API has
 * a score of fixed routes with at most one parameter each, the table is ~20 lines, it adds no
 * runtime dependency, and the OpenAPI test walks the same table. HEAD takes every GET route (the
 * handler answers it without a body); a path that matches with another method answers 405 with
 * `Allow`; path parameters are percent-decoded strictly.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import { HttpError, badRequest } from './errors.js'
import type { Query } from './query.js'
import type { Served } from './served.js'

/** What a handler gets. */
export interface Context {
  req: IncomingMessage
  res: ServerResponse
  /** Path parameters, decoded. */
  params: Record<string, string>
  /** The query, parsed with the route's parameters. */
  query: Query
  /** The served queues and the handler's options. */
  served: Served
  /** The path the handler is mounted under ('' at the root), for Location headers. */
  prefix: string
}

/** A JSON answer (or text, for /metrics). */
export interface Reply {
  /** @default 200 */
  status?: number
  /** Sent as JSON unless `text` is given. */
  body?: unknown
  /** Sent as it is, with `headers['Content-Type']`. */
  text?: string
  headers?: Record<string, string>
}

/** HTTP methods the API uses. */
export type Method = 'GET' | 'POST' | 'DELETE'

/** One route. */
export interface Route {
  method: Method
  /** Segments; `:name` is a parameter. */
  path: string
  /** The query parameters it takes. */
  query: readonly string[]
  /** True when it changes something (refused under `readOnly`). */
  change: boolean
  /** Answers; undefined when it wrote the response itself (SSE). */
  handle(ctx: Context): Promise<Reply | undefined>
}

/** A route found for a request, with its parameters. */
export interface Match {
  route: Route
  params: Record<string, string>
}

function segments(path: string): string[] {
  return path.split('/').slice(1)
}

/**
 * Matches `method` and `pathname` against `routes` (HEAD as GET); undefined when no path matches.
 */
export function match(
  routes: readonly Route[],
  method: string,
  pathname: string,
): Match | undefined {
  const wanted = method === 'HEAD' ? 'GET' : method
  const parts = segments(pathname)
  const allowed: string[] = []
  for (const route of routes) {
    const pattern = segments(route.path)
    if (pattern.length !== parts.length) continue
    const params: Record<string, string> = {}
    let ok = true
    for (let i = 0; i < pattern.length && ok; i++) {
      const p = pattern[i]!
      const part = parts[i]!
      if (p.startsWith(':')) {
        if (part === '') ok = false
        else params[p.slice(1)] = decodeSegment(part, p.slice(1))
      } else ok = p === part
    }
    if (!ok) continue
    if (route.method === wanted) return { route, params }
    allowed.push(...(route.method === 'GET' ? ['GET', 'HEAD'] : [route.method]))
  }
  if (allowed.length)
    throw new HttpError(
      405,
      'ERR_WORQ_HTTP_METHOD',
      `${pathname} takes ${allowed.join(', ')}, not ${method}`,
      { Allow: allowed.join(', ') },
    )
  return undefined
}

function decodeSegment(part: string, name: string): string {
  try {
    return decodeURIComponent(part)
  } catch {
    throw badRequest(
      `the path's ${name} is not valid percent-encoded UTF-8`,
      'ERR_WORQ_HTTP_BAD_PATH',
    )
  }
}
