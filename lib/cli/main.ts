#!/usr/bin/env node
/**
 * The `worq` command: `worker`, `info`, `call`, `purge`, `tasks`, `task`, `cancel`, `pause`,
 * `resume`, `schedules`, `dashboard`, `migrate`. The only part of worq that prints. The program is in
 * program.ts; exit codes in exit-codes.ts (and docs/worker.md).
 */
import { main } from './program.js'

process.exit(await main())
