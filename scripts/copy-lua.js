// Copies the Redis Lua scripts and the PostgreSQL schema files next to the compiled wrappers: the
// build ships the .lua and .sql files.
import { cpSync, existsSync } from 'node:fs'

for (const [from, to] of [
  ['lib/backends/redis/scripts', 'dist/backends/redis/scripts'],
  ['lib/backends/postgres/schema', 'dist/backends/postgres/schema'],
])
  if (existsSync(from)) cpSync(from, to, { recursive: true, filter: f => !f.endsWith('.ts') })
