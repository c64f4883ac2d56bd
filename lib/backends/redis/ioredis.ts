/**
 * ioredis, loaded when the first Redis connection is made rather than with the library: a process
 * on memory:// or PostgreSQL never loads it (about a sixth of the library's import time).
 */
import { createRequire } from 'node:module'
import type * as Ioredis from 'ioredis'

let loaded: typeof Ioredis | undefined

/** ioredis (a CommonJS package: required, so the first connection is made synchronously). */
export function ioredis(): typeof Ioredis {
  return (loaded ??= createRequire(import.meta.url)('ioredis') as typeof Ioredis)
}
