// Copies the Redis Lua scripts next to the compiled wrappers: the build ships the .lua files.
import { cpSync, existsSync } from 'node:fs'

const from = 'lib/backends/redis/scripts'
if (existsSync(from))
  cpSync(from, 'dist/backends/redis/scripts', { recursive: true, filter: f => !f.endsWith('.ts') })
