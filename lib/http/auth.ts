/**
 * Who may call the API: a bearer token compared in constant time (SHA-256 digests of equal
 * length through `timingSafeEqual`, so neither the token's content nor its length leaks through
 * timing), and an `authorize(req)` function for any other scheme.
 */
import { createHash, timingSafeEqual } from 'node:crypto'
import type { IncomingMessage } from 'node:http'
import { HttpError } from './errors.js'

function digest(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest()
}

/** Checks `token` (an option): a non-empty string of visible ASCII. */
export function checkToken(token: unknown): string {
  if (typeof token !== 'string' || !/^[\x21-\x7e]{1,1024}$/.test(token))
    throw new TypeError(
      'Expected `token` to be 1–1024 visible ASCII characters (no spaces), as sent in "Authorization: Bearer <token>"',
    )
  return token
}

/** A check of the `Authorization` header against `token`, in constant time. */
export function bearerCheck(token: string): (header: string | undefined) => boolean {
  const expected = digest(token)
  return header => {
    const match = /^Bearer +(\S+) *$/i.exec(header ?? '')
    // Compare even when the header is missing, so that both paths take the same time.
    const given = digest(match ? match[1]! : '')
    return timingSafeEqual(given, expected) && match !== null
  }
}

/** A function that decides whether a request may go on (any scheme: cookies, mTLS, a gateway's header). */
export type Authorize = (req: IncomingMessage) => boolean | Promise<boolean>

/** Throws 401 or 403 unless the request passes the token and `authorize`. */
export async function authenticate(
  req: IncomingMessage,
  check: ((header: string | undefined) => boolean) | undefined,
  authorize: Authorize | undefined,
): Promise<void> {
  if (check && !check(req.headers.authorization))
    throw new HttpError(
      401,
      'ERR_WORQ_HTTP_UNAUTHORIZED',
      'this server needs "Authorization: Bearer <token>" with the token it was started with',
      { 'WWW-Authenticate': 'Bearer realm="worq"' },
    )
  if (authorize && !(await authorize(req)))
    throw new HttpError(403, 'ERR_WORQ_HTTP_FORBIDDEN', 'this request was not authorized')
}
