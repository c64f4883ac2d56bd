/**
 * node-postgres, loaded when the first PostgreSQL backend opens rather than with the library: a
 * process on memory:// or Redis never loads it (about a quarter of the library's import time).
 */
import { createRequire } from 'node:module'
import type Pg from 'pg'

let loaded: typeof Pg | undefined

/** Loads node-postgres with `import()` (see ioredis.ts); a backend opened by URL awaits this first. */
export async function loadPg(): Promise<void> {
  loaded ??= (await import('pg')).default
}

/** node-postgres: as loaded by {@link loadPg}, or required now (a client made directly). */
export function pg(): typeof Pg {
  return (loaded ??= createRequire(import.meta.url)('pg') as typeof Pg)
}
