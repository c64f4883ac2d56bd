/**
 * ioredis, loaded when the first Redis backend opens rather than with the library: a process on
 * memory:// or PostgreSQL never loads it (about a sixth of the library's import time).
 */
import { createRequire } from 'node:module'
import type * as Ioredis from 'ioredis'

let loaded: typeof Ioredis | undefined

/**
 * Loads ioredis with `import()`; a backend opened by URL awaits this first. (Loaded with
 * `require` instead, the same ioredis ran the closed-loop bench about 6 % slower in Node CPU per
 * task on this machine, interleaved runs; `import()` measured as the static import did.)
 */
export async function loadIoredis(): Promise<void> {
  loaded ??= await import('ioredis')
}

/** ioredis: as loaded by {@link loadIoredis}, or required now (a backend made directly). */
export function ioredis(): typeof Ioredis {
  return (loaded ??= createRequire(import.meta.url)('ioredis') as typeof Ioredis)
}
