/**
 * HTTP errors: `HttpError` carries a status and a stable code; `toHttpError` maps what the
 * library throws (a TypeError naming a bad option, DuplicateTask, BackendFull, …) to a status.
 * Every error answers `{ "error": { "code", "message" } }`.
 */
import { WorqError } from '../index.js'

/** An error the API answers with `status`. */
export class HttpError extends WorqError {
  /** The HTTP status. */
  readonly status: number
  /** Extra response headers (`Allow`, `WWW-Authenticate`). */
  readonly headers: Record<string, string>

  /** @internal */
  constructor(status: number, code: string, message: string, headers: Record<string, string> = {}) {
    super(code, message)
    this.name = 'HttpError'
    this.status = status
    this.headers = headers
  }
}

/** 400 with `code` (default ERR_WORQ_HTTP_BAD_REQUEST). */
export function badRequest(message: string, code = 'ERR_WORQ_HTTP_BAD_REQUEST'): HttpError {
  return new HttpError(400, code, message)
}

/**
 * The library's error codes and the status each answers with; the body keeps the error's own code
 * and message (docs/http.md, "Errors"). A code not here is one no route meets (a task's failure,
 * a wait's timeout, a worker's errors, a bad URL, `tx`): if one ever reaches a route, it is a bug
 * of the server, answered 500 `ERR_WORQ_HTTP_INTERNAL` and handed to `onError`. @internal
 */
export const STATUS_OF_CODE: Readonly<Record<string, number>> = {
  // The call does not fit the task or the queue as they are: change the request.
  ERR_WORQ_DUPLICATE_TASK: 409,
  ERR_WORQ_NOT_RETRYABLE: 409,
  ERR_WORQ_LISTING_OFF: 409,
  ERR_WORQ_PAYLOAD_TOO_LARGE: 413,
  // The backend cannot do it now; nothing was written, so sending the request again is safe.
  ERR_WORQ_CLOSED: 503,
  ERR_WORQ_BACKEND_UNREACHABLE: 503,
  ERR_WORQ_BACKEND_FULL: 503,
  ERR_WORQ_STATEMENT_TIMEOUT: 503,
  // The backend is not one this server can use until its operator acts (upgrade, migrate, grant).
  ERR_WORQ_UNSUPPORTED_SERVER: 503,
  ERR_WORQ_SCHEMA_TOO_NEW: 503,
  ERR_WORQ_MIGRATION_DENIED: 503,
  ERR_WORQ_AUTH_FAILED: 503,
  // Written on the master, but not confirmed by the replicas in time: the outcome is not known.
  ERR_WORQ_REPLICATION_TIMEOUT: 504,
}

/**
 * The library's argument checks throw a TypeError or RangeError whose message starts so (p-limit's
 * convention, lib/options.ts): "Expected `priority` to be …", "Unknown task option `x`; …". Only
 * those are the client's mistake; any other TypeError is a bug of the server.
 */
const VALIDATION_MESSAGE = /^(Expected|Unknown) /

/** What the API answers for `err`: its status, code and message. */
export function toHttpError(err: unknown): HttpError {
  if (err instanceof HttpError) return err
  if (err instanceof WorqError) {
    const status = STATUS_OF_CODE[err.code]
    if (status) return new HttpError(status, err.code, err.message)
  }
  // The library's checks of task options, filters, ids and names say what to change.
  if (
    (err instanceof TypeError || err instanceof RangeError) &&
    VALIDATION_MESSAGE.test(err.message)
  )
    return new HttpError(400, 'ERR_WORQ_HTTP_BAD_REQUEST', err.message)
  const code = (err as { code?: unknown } | null)?.code
  if (typeof code === 'string' && /^(ECONNREFUSED|ETIMEDOUT|ENOTFOUND|EAI_AGAIN)$/.test(code))
    return new HttpError(503, 'ERR_WORQ_HTTP_BACKEND_DOWN', 'the backend cannot be reached')
  return new HttpError(
    500,
    'ERR_WORQ_HTTP_INTERNAL',
    'the server failed to answer this request; its log may say why',
  )
}
