/**
 * Turns a WorkerPool's events (and its child processes', when it has them) into one log line each:
 * task start and end (name, queue, id, status, ms), lost leases, sweeps, backend errors, children
 * forked, ready and exited. The library only calls the logger it is given: the `worq` command
 * passes its own (lib/cli/logger.ts), an application may pass pino or bunyan.
 */
import type { ChildProcessExecutor } from './children/child-executor.js'
import type { WorkerPool } from './pool.js'

/** Structured fields of a log line: `event` names it (`task:end`, `child:exit`, …). */
export type LogFields = Record<string, unknown>

/** Where lifecycle events go. pino-compatible: `logger.info(fields, message)`. */
export interface Logger {
  /** A lifecycle event: a task started or completed, a sweep, a child forked or recycled. */
  info(fields: LogFields, message: string): void
  /** Something to look at: a task that did not complete, a lost lease, a pool warning. */
  warn(fields: LogFields, message: string): void
  /** A failure: a backend error, a child that crashed or could not load its tasks. */
  error(fields: LogFields, message: string): void
}

/**
 * Logs `pool`'s lifecycle events (and `executor`'s children) to `logger`. Returns a function that
 * stops logging.
 */
export function logPoolEvents(
  pool: WorkerPool,
  logger: Logger,
  executor?: ChildProcessExecutor,
): () => void {
  const off: Array<() => void> = []
  const on = <T extends { on(e: string, l: never): unknown; off(e: string, l: never): unknown }>(
    emitter: T,
    event: string,
    listener: (e: any) => void,
  ) => {
    emitter.on(event, listener as never)
    off.push(() => emitter.off(event, listener as never))
  }
  on(pool, 'task:start', e =>
    logger.info(
      { event: 'task:start', name: e.name, queue: e.queue, id: e.id, attempt: e.attempt },
      `task:start ${e.name} [${e.queue}:${e.id}] attempt ${e.attempt}`,
    ),
  )
  on(pool, 'task:end', e => {
    const fields = { event: 'task:end', name: e.name, queue: e.queue, id: e.id, status: e.status }
    const line = `task:end ${e.name} [${e.queue}:${e.id}] ${e.status} in ${e.ms} ms`
    if (e.status === 'completed') logger.info({ ...fields, ms: e.ms }, line)
    else logger.warn({ ...fields, ms: e.ms }, line)
  })
  on(pool, 'task:cancelled', e =>
    logger.warn(
      { event: 'task:cancelled', name: e.name, queue: e.queue, id: e.id },
      `task:cancelled ${e.name} [${e.queue}:${e.id}]: its signal aborts`,
    ),
  )
  on(pool, 'pool:paused', e =>
    logger.info(
      { event: 'pool:paused', queue: e.queue },
      `pool:paused queue ${e.queue} is paused: nothing new starts until it is resumed`,
    ),
  )
  on(pool, 'pool:resumed', e =>
    logger.info({ event: 'pool:resumed', queue: e.queue }, `pool:resumed queue ${e.queue}`),
  )
  on(pool, 'lease:lost', e =>
    logger.warn(
      { event: 'lease:lost', queue: e.queue, id: e.id },
      `lease:lost [${e.queue}:${e.id}]: its result will be refused`,
    ),
  )
  on(pool, 'pool:swept', e =>
    logger.info(
      { event: 'pool:swept', queue: e.queue, count: e.count },
      `pool:swept ${e.count} lapsed task(s) of queue ${e.queue} expired or retried`,
    ),
  )
  on(pool, 'pool:warning', e =>
    logger.warn({ event: 'pool:warning', queue: e.queue }, `pool:warning ${e.message}`),
  )
  on(pool, 'pool:error', (err: Error & { code?: string }) =>
    logger.error(
      { event: 'pool:error', error: err.message, code: err.code },
      `pool:error ${err.name}: ${err.message}`,
    ),
  )
  if (executor) {
    on(executor, 'child:spawn', e =>
      logger.info({ event: 'child:spawn', pid: e.pid }, `child:spawn pid ${e.pid}`),
    )
    on(executor, 'child:ready', e =>
      logger.info(
        { event: 'child:ready', pid: e.pid, tasks: e.names.length },
        `child:ready pid ${e.pid} (${e.names.length} tasks)`,
      ),
    )
    on(executor, 'child:exit', e => {
      const how = e.signal ? `signal ${e.signal}` : `code ${e.code}`
      const why = e.error ? `: ${e.error.name}: ${e.error.message}` : ''
      const fields = {
        event: 'child:exit',
        pid: e.pid,
        reason: e.reason,
        code: e.code,
        signal: e.signal,
        tasks: e.tasks,
        error: e.error?.message,
      }
      const line = `child:exit pid ${e.pid} ${e.reason} (${how}) after ${e.tasks} task(s)${why}`
      if (e.reason === 'recycled' || e.reason === 'stopped') logger.info(fields, line)
      else logger.error(fields, line)
    })
  }
  return () => off.forEach(f => f())
}
