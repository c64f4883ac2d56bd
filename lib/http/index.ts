/**
 * `worq/http`: the HTTP control API and live dashboard of worq queues (docs/http.md,
 * docs/dashboard.md). `worqHttp(brokers, options)` is a Node request listener that works in
 * `http.createServer`, as Express middleware, and in Fastify; it uses the library's public API
 * only.
 *
 * @packageDocumentation
 */
// The declarations name Node's types: @types/node, a dependency, is loaded with them (lib/ambient.ts).
/// <reference types="node" preserve="true" />
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Broker } from '../index.js'
import { authenticate, bearerCheck, checkToken, type Authorize } from './auth.js'
import { DEFAULT_BODY_LIMIT, DEFAULT_BODY_TIMEOUT_MS } from './body.js'
import { HttpError, toHttpError } from './errors.js'
import { parseQuery } from './query.js'
import { match, type Reply, type Route } from './router.js'
import { routeTable } from './routes/index.js'
import { Served, type SubmitPolicy } from './served.js'
import type { Clients } from './sse.js'
import { isPageFile, servePage } from './static.js'

export { HttpError } from './errors.js'
export { SERVER_TIMEOUTS, type ServerTimeouts } from './timeouts.js'
export type { Authorize } from './auth.js'
export type { SubmitPolicy } from './served.js'
export type * from './types.js'

/** Options of {@link worqHttp}. */
export interface WorqHttpOptions {
  /**
   * Every API request (`/api/…` and `/metrics`) needs `Authorization: Bearer <token>`, compared in
   * constant time. The page's own files need none (they hold no data); the page asks for the
   * token and keeps it in sessionStorage. @default no token
   */
  token?: string
  /** Decides whether an API request may go on (after the token, when both are set): any other scheme. */
  authorize?: Authorize
  /** Every change (POST, DELETE) answers 403. @default false */
  readOnly?: boolean
  /**
   * Which task names `POST /api/tasks` may enqueue and `POST /api/tasks/:id/retry` may run again:
   * a list of names, a function of the name, queue and request, or `'exposed'`: the names the
   * queue's live workers expose. @default 'exposed'
   */
  submit?: SubmitPolicy
  /**
   * The path prefix the handler is mounted under, when the framework does not strip it (plain
   * `http.createServer`, Fastify); Express's `app.use('/worq', …)` strips it itself. @default ''
   */
  basePath?: string
  /** The largest request body, bytes (413 past it). @default 1 MiB */
  bodyLimit?: number
  /**
   * ms a request body may take to arrive once its route reads it: past it, 408 and the connection
   * closes. Set the server's own header and request timeouts too ({@link SERVER_TIMEOUTS}).
   * @default 10000
   */
  bodyTimeoutMs?: number
  /** ms between keep-alive comments on an event stream. @default 15000 */
  heartbeatMs?: number
  /** Most event streams open at once (503 past it); on Redis each holds a connection while it waits. @default 100 */
  maxEventStreams?: number
  /** ms `GET /api/health` waits for a backend before it answers 503. @default 2000 */
  healthTimeoutMs?: number
  /**
   * Called with the error a 5xx answered for, other than its own refusals (docs/http.md,
   * "Errors"), after the answer went out: the library never prints, log it here. One that throws
   * or rejects is passed over.
   */
  onError?: (err: unknown, req: IncomingMessage) => void
}

/** The handler `worqHttp` returns: a Node request listener and Express middleware. */
export interface WorqHttpHandler {
  /** Answers `req`; with Express's `next`, a request outside the API and the page goes on to it. */
  (req: IncomingMessage, res: ServerResponse, next?: (err?: unknown) => void): void
  /**
   * Ends every open event stream (call it before `server.close()`); a stream asked for after it,
   * or still on its way (an async `authorize`), answers 503 `ERR_WORQ_HTTP_CLOSED`. From then on
   * every answer of the handler, those still on their way included, closes its connection, so
   * that `server.close()` does not wait for it kept alive. The brokers stay open.
   */
  close(): Promise<void>
}

function positiveInt(name: string, v: unknown, fallback: number): number {
  if (v === undefined) return fallback
  if (!Number.isSafeInteger(v) || (v as number) < 1)
    throw new TypeError(`Expected \`${name}\` to be a positive integer, got ${String(v)}`)
  return v as number
}

/** The longest delay Node's timers take (2^31 − 1 ms, about 24.8 days); past it they fire at once. */
const MAX_TIMER_MS = 2 ** 31 - 1

function timerMs(name: string, v: unknown, fallback: number): number {
  const ms = positiveInt(name, v, fallback)
  if (ms > MAX_TIMER_MS)
    throw new TypeError(
      `Expected \`${name}\` to be at most ${MAX_TIMER_MS} ms (about 24.8 days), got ${ms}`,
    )
  return ms
}

function checkBasePath(v: unknown): string {
  if (v === undefined || v === '' || v === '/') return ''
  if (typeof v !== 'string' || !/^(\/[\w.~-]+)+$/.test(v))
    throw new TypeError(
      `Expected \`basePath\` to be a path like "/worq" (no trailing slash), got ${String(v)}`,
    )
  return v
}

function checkSubmitPolicy(v: unknown): SubmitPolicy {
  if (v === undefined || v === 'exposed' || typeof v === 'function')
    return (v ?? 'exposed') as SubmitPolicy
  if (Array.isArray(v) && v.every(n => typeof n === 'string')) return [...v]
  throw new TypeError("Expected `submit` to be 'exposed', an array of task names, or a function")
}

const SECURITY_HEADERS = {
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
  'X-Frame-Options': 'DENY',
}

/** Sends `reply`; to a HEAD, its status and headers (Content-Length included) without the body. */
function send(res: ServerResponse, reply: Reply): void {
  const status = reply.status ?? 200
  const headers: Record<string, string | number> = { 'Cache-Control': 'no-store', ...reply.headers }
  const body = reply.text ?? JSON.stringify(reply.body) + '\n'
  headers['Content-Type'] ??= 'application/json; charset=utf-8'
  headers['Content-Length'] = Buffer.byteLength(body)
  res.writeHead(status, headers)
  res.end(res.req.method === 'HEAD' ? undefined : body)
}

function sendError(res: ServerResponse, err: HttpError): void {
  // Too late to answer, or no one to answer (the client went).
  if (res.headersSent || res.destroyed) {
    res.destroy()
    return
  }
  // A refused body may still be arriving (too large, too slow): close the connection after the answer.
  if (err.status === 413 || err.status === 408) res.setHeader('Connection', 'close')
  send(res, {
    status: err.status,
    headers: err.headers,
    body: { error: { code: err.code, message: err.message } },
  })
}

/**
 * The HTTP API and dashboard of one broker's queue or several (one broker per queue), as a Node
 * request listener: `http.createServer(worqHttp(broker))`, `app.use('/worq', worqHttp(brokers))`.
 * The brokers stay the caller's to close.
 */
export function worqHttp(
  brokers: Broker | readonly Broker[],
  options: WorqHttpOptions = {},
): WorqHttpHandler {
  const list = (Array.isArray(brokers) ? brokers : [brokers]) as Broker[]
  if (list.length === 0) throw new TypeError('Expected at least one broker to serve')
  if (options.authorize !== undefined && typeof options.authorize !== 'function')
    throw new TypeError('Expected `authorize` to be a function of the request')
  const served = new Served(list, {
    check: options.token === undefined ? undefined : bearerCheck(checkToken(options.token)),
    authorize: options.authorize,
    readOnly: options.readOnly === true,
    submit: checkSubmitPolicy(options.submit),
    basePath: checkBasePath(options.basePath),
    bodyLimit: positiveInt('bodyLimit', options.bodyLimit, DEFAULT_BODY_LIMIT),
    bodyTimeoutMs: timerMs('bodyTimeoutMs', options.bodyTimeoutMs, DEFAULT_BODY_TIMEOUT_MS),
    heartbeatMs: timerMs('heartbeatMs', options.heartbeatMs, 15_000),
    maxEventStreams: positiveInt('maxEventStreams', options.maxEventStreams, 100),
    healthTimeoutMs: timerMs('healthTimeoutMs', options.healthTimeoutMs, 2000),
    onError: options.onError,
  })
  const clients: Clients = { ends: new Set(), closed: false }
  const routes: Route[] = routeTable(clients)
  /** The answers begun before close() and not yet sent (their headers can still change). */
  const answering = new Set<ServerResponse>()

  /**
   * Marks `res` as the handler's to answer. Once the handler closed, an answer closes its
   * connection: `server.close()` closes only the connections idle when it is called, so one
   * answered after it would otherwise stay open, kept alive, until the client or the server's
   * keepAliveTimeout closed it.
   */
  function own(res: ServerResponse): void {
    for (const [k, v] of Object.entries(SECURITY_HEADERS)) res.setHeader(k, v)
    if (clients.closed) {
      res.setHeader('Connection', 'close')
      return
    }
    answering.add(res)
    res.once('close', () => answering.delete(res))
  }

  async function answer(req: IncomingMessage, res: ServerResponse, next?: (err?: unknown) => void) {
    const url = originForm(req.url ?? '/')
    const q = url.indexOf('?')
    let pathname = q < 0 ? url : url.slice(0, q)
    const search = q < 0 ? '' : url.slice(q + 1)
    const base = served.options.basePath
    if (base) {
      if (pathname !== base && !pathname.startsWith(base + '/')) return pass(res, next, own)
      pathname = pathname.slice(base.length)
    }
    // Mounted by Express under a path: the part it stripped (for Location headers and redirects).
    const originalUrl = (req as { originalUrl?: string }).originalUrl
    const original = originalUrl === undefined ? undefined : originForm(originalUrl).split('?')[0]
    let prefix = base
    if (!base && original !== undefined && original !== pathname)
      prefix = original.endsWith(pathname) ? original.slice(0, -pathname.length) : original
    // The page's links are relative: it must be read at a path ending in '/'.
    const redirect =
      pathname === '' || (pathname === '/' && original !== undefined && !original.endsWith('/'))
    const page = (req.method === 'GET' || req.method === 'HEAD') && isPageFile(pathname)
    const api = pathname.startsWith('/api/') || pathname === '/metrics'
    // What is not ours goes on untouched (Express at the root), or is a 404.
    if (!redirect && !page && !api) return pass(res, next, own)
    own(res)
    if (redirect) {
      res.writeHead(308, { Location: `${prefix}/` })
      res.end()
      return
    }
    if (page) return servePage(pathname, req.method === 'HEAD', res)
    await authenticate(req, served.options.check, served.options.authorize)
    const found = match(routes, req.method ?? 'GET', pathname)
    if (!found)
      throw new HttpError(
        404,
        'ERR_WORQ_HTTP_NOT_FOUND',
        `no route ${pathname}; see /api/openapi.json`,
      )
    if (found.route.change && served.options.readOnly)
      throw new HttpError(
        403,
        'ERR_WORQ_HTTP_READ_ONLY',
        'this server is read-only: it changes nothing',
      )
    const reply = await found.route.handle({
      req,
      res,
      params: found.params,
      query: parseQuery(search, found.route.query),
      served,
      prefix,
    })
    if (reply) send(res, reply)
  }

  const handler = ((req, res, next) => {
    answer(req, res, next).catch((err: unknown) => {
      const http = toHttpError(err)
      sendError(res, http)
      if (http.status >= 500 && !(err instanceof HttpError)) report(served, err, req)
    })
  }) as WorqHttpHandler
  handler.close = async () => {
    clients.closed = true
    for (const res of answering) if (!res.headersSent) res.setHeader('Connection', 'close')
    answering.clear()
    for (const end of [...clients.ends]) end()
    clients.ends.clear()
  }
  return handler
}

/**
 * Hands `err` to `onError`, after the answer went out. An `onError` that throws or rejects (a
 * logger closed at shutdown) is passed over: it must not leave the request unanswered, nor reject
 * unhandled, which would end the process.
 */
function report(served: Served, err: unknown, req: IncomingMessage): void {
  try {
    const r = served.options.onError?.(err, req) as unknown
    if (r instanceof Promise) r.catch(() => undefined)
  } catch {
    // passed over, as said
  }
}

/**
 * A request target in origin form: one in absolute form (`http://host/api/tasks?limit=1`, which
 * HTTP/1.1 servers must accept, RFC 9112 §3.2.2, and clients send to a proxy) as its path and
 * query (`/api/tasks?limit=1`). Only the path routes; the host it names is not used.
 */
function originForm(target: string): string {
  const origin = /^[a-z][a-z\d+.-]*:\/\/[^/?]*/i.exec(target)
  if (!origin) return target
  const rest = target.slice(origin[0].length)
  return rest.startsWith('/') ? rest : '/' + rest
}

/** Hands a request that is not the API's or the page's to `next`, or answers 404 (as `own`s). */
function pass(
  res: ServerResponse,
  next: ((err?: unknown) => void) | undefined,
  own: (res: ServerResponse) => void,
): void {
  if (next) return next()
  own(res)
  sendError(
    res,
    new HttpError(404, 'ERR_WORQ_HTTP_NOT_FOUND', 'no such page; the API is under /api'),
  )
}
