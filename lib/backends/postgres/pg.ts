/**
 * node-postgres, loaded when the first PostgreSQL client is made rather than with the library: a
 * process on memory:// or Redis never loads it (about a quarter of the library's import time).
 */
import { createRequire } from 'node:module'
import type Pg from 'pg'

let loaded: typeof Pg | undefined

/** node-postgres (a CommonJS package: required, so a client is made synchronously). */
export function pg(): typeof Pg {
  return (loaded ??= createRequire(import.meta.url)('pg') as typeof Pg)
}
