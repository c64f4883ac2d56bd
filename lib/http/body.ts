/**
 * Request bodies: JSON only (`Content-Type: application/json`, UTF-8), at most `limit` bytes
 * (413 past it, told by Content-Length before anything is read, or counted as it arrives), arrived
 * within a time (408 past it: a client that trickles its body holds no connection for long), decoded
 * strictly (a byte sequence that is not UTF-8 is a 400), parsed, and refused when any object in it
 * has a key that walks prototypes (`__proto__`, `constructor`, `prototype`) or nests too deep.
 */
import type { IncomingMessage } from 'node:http'
import { HttpError, badRequest } from './errors.js'

/** Keys no request body may have, at any depth. */
const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype'])
/** Deepest nesting a body may have. */
const MAX_DEPTH = 64

/** The default body limit: 1 MiB. */
export const DEFAULT_BODY_LIMIT = 1024 * 1024

/** 413 for a body over `limit`. */
function tooLarge(limit: number): HttpError {
  return new HttpError(
    413,
    'ERR_WORQ_HTTP_BODY_TOO_LARGE',
    `the request body is over ${limit} bytes (the server's bodyLimit option)`,
  )
}

/** Throws unless `contentType` is JSON in UTF-8. */
export function checkContentType(contentType: string | undefined): void {
  const [type, ...params] = (contentType ?? '').split(';').map(s => s.trim().toLowerCase())
  if (type !== 'application/json')
    throw new HttpError(
      415,
      'ERR_WORQ_HTTP_CONTENT_TYPE',
      `send the body as JSON with "Content-Type: application/json" (got ${JSON.stringify(contentType ?? '')})`,
    )
  for (const p of params) {
    if (p.startsWith('charset=') && p !== 'charset=utf-8' && p !== 'charset="utf-8"')
      throw new HttpError(
        415,
        'ERR_WORQ_HTTP_CONTENT_TYPE',
        `send the body in UTF-8 (got ${JSON.stringify(p)})`,
      )
  }
}

/** Throws a 400 naming the first forbidden key or a nesting past the limit. */
function checkKeys(v: unknown, path: string, depth: number): void {
  if (typeof v !== 'object' || v === null) return
  if (depth > MAX_DEPTH) throw badRequest(`the body nests deeper than ${MAX_DEPTH} levels`)
  if (Array.isArray(v)) {
    v.forEach((x, i) => checkKeys(x, `${path}[${i}]`, depth + 1))
    return
  }
  for (const k of Object.keys(v)) {
    if (FORBIDDEN_KEYS.has(k))
      throw badRequest(
        `the body has a key ${JSON.stringify(k)} at ${path}; keys __proto__, constructor and prototype are refused`,
        'ERR_WORQ_HTTP_FORBIDDEN_KEY',
      )
    checkKeys((v as Record<string, unknown>)[k], `${path}.${k}`, depth + 1)
  }
}

/** Parses a complete body: strict UTF-8, JSON, no prototype keys. */
export function parseJsonBody(bytes: Uint8Array): unknown {
  let text: string
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes)
  } catch {
    throw badRequest('the body is not valid UTF-8', 'ERR_WORQ_HTTP_BAD_UTF8')
  }
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch (err) {
    throw badRequest(`the body is not JSON: ${(err as Error).message}`, 'ERR_WORQ_HTTP_BAD_JSON')
  }
  checkKeys(value, '$', 0)
  return value
}

/** The default time a body may take to arrive: 10 s (hapi's payload timeout). */
export const DEFAULT_BODY_TIMEOUT_MS = 10_000

/** 408 for a body that did not arrive within `ms`. */
function tooSlow(ms: number): HttpError {
  return new HttpError(
    408,
    'ERR_WORQ_HTTP_BODY_TIMEOUT',
    `the request body did not arrive within ${ms} ms (the server's bodyTimeoutMs option): send it at once`,
  )
}

/**
 * Reads and parses the JSON body of `req`: at most `limit` bytes, arrived within `timeoutMs` of
 * this call (408 past it; the answer closes the connection).
 */
export async function readJson(
  req: IncomingMessage,
  limit: number,
  timeoutMs: number,
): Promise<unknown> {
  if ((req as { body?: unknown }).body !== undefined)
    throw new HttpError(
      500,
      'ERR_WORQ_HTTP_BODY_CONSUMED',
      'a body parser read the request body before worqHttp did: mount worqHttp before express.json() and the like',
    )
  checkContentType(req.headers['content-type'])
  const declared = Number(req.headers['content-length'])
  if (Number.isFinite(declared) && declared > limit) throw tooLarge(limit)
  let timer: NodeJS.Timeout | undefined
  const read = new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let size = 0
    let over = false
    // Too slow: the rest is dropped as it comes, as past the limit.
    timer = setTimeout(() => {
      over = true
      chunks.length = 0
      reject(tooSlow(timeoutMs))
    }, timeoutMs)
    // Past the limit, the rest is read and dropped (not destroyed), so that the 413 reaches the
    // client; the answer closes the connection.
    req.on('data', (chunk: Buffer) => {
      if (over) return
      size += chunk.length
      if (size > limit) {
        over = true
        chunks.length = 0
        reject(tooLarge(limit))
      } else chunks.push(chunk)
    })
    req.once('end', () => {
      if (over) return
      try {
        resolve(parseJsonBody(Buffer.concat(chunks)))
      } catch (err) {
        reject(err)
      }
    })
    // A client that goes before its body arrived (it closed the connection, or the connection
    // broke) did so itself: readJson rejects with `aborted`, which is not the server's failure.
    req.once('error', () => reject(aborted()))
    req.once('close', () => {
      if (!req.complete) reject(aborted())
    })
  })
  try {
    return await read
  } finally {
    clearTimeout(timer)
  }
}

/**
 * The request's connection closed before its body arrived. Nothing can answer it (the handler
 * sends nothing to a closed connection), and it is not handed to `onError`: any client could
 * flood a log with them.
 */
function aborted(): HttpError {
  return new HttpError(
    400,
    'ERR_WORQ_HTTP_ABORTED',
    'the client closed the connection before the request body arrived',
  )
}
