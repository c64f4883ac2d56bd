/**
 * The dashboard page's files (built by `npm run build` into dist/http/dashboard/), served from a
 * fixed list: no path from a request ever reaches the file system, so no path walks out of it.
 * The page gets a strict Content-Security-Policy: everything from this origin, nothing inline,
 * no frames.
 */
import { readFile } from 'node:fs/promises'
import type { ServerResponse } from 'node:http'
import { fileURLToPath } from 'node:url'

// lib/http and dist/http are both two levels below the package's root: from sources (tsx) and
// from the build alike, this is the built page.
const DIR = fileURLToPath(new URL('../../dist/http/dashboard/', import.meta.url))

/** The page's Content-Security-Policy. */
export const PAGE_CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
  "font-src 'none'; object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

/** Request path → file and content type. */
const FILES: Record<string, [file: string, type: string]> = {
  '/': ['index.html', 'text/html; charset=utf-8'],
  '/index.html': ['index.html', 'text/html; charset=utf-8'],
  '/app.js': ['app.js', 'text/javascript; charset=utf-8'],
  '/app.css': ['app.css', 'text/css; charset=utf-8'],
  '/favicon.svg': ['favicon.svg', 'image/svg+xml'],
}

const cache = new Map<string, Promise<Buffer>>()

/** True when `pathname` is one of the page's files. */
export function isPageFile(pathname: string): boolean {
  return Object.hasOwn(FILES, pathname)
}

/** Answers a GET or HEAD of one of the page's files. */
export async function servePage(
  pathname: string,
  head: boolean,
  res: ServerResponse,
): Promise<void> {
  const [file, type] = FILES[pathname]!
  let body = cache.get(file)
  if (!body) {
    body = readFile(DIR + file)
    cache.set(file, body)
  }
  let bytes: Buffer
  try {
    bytes = await body
  } catch {
    cache.delete(file)
    res.writeHead(503, { 'Content-Type': 'text/plain; charset=utf-8' })
    res.end(
      'The dashboard page is not built: run npm run build (the JSON API under /api works without it).\n',
    )
    return
  }
  res.writeHead(200, {
    'Content-Type': type,
    'Content-Length': bytes.length,
    'Content-Security-Policy': PAGE_CSP,
    'Cache-Control': 'no-cache',
  })
  res.end(head ? undefined : bytes)
}
