/**
 * The logger the worker writes its lifecycle events to. The interface has pino's shape (`info(fields,
 * message)`), so a pino or bunyan logger can be passed as is; the CLI's own loggers print one line
 * per event, as text or JSON. The library never prints: only these loggers write, and only the CLI
 * creates them.
 */

/** Structured fields of a log line: `event` names it (`task:end`, `child:exit`, …). */
export type LogFields = Record<string, unknown>

/** Where lifecycle events go. pino-compatible: `logger.info(fields, message)`. */
export interface Logger {
  info(fields: LogFields, message: string): void
  warn(fields: LogFields, message: string): void
  error(fields: LogFields, message: string): void
}

/** The CLI's log formats. */
export type LogFormat = 'text' | 'json'

type Level = 'info' | 'warn' | 'error'

/** A logger writing one line per event: `<ISO time> <LEVEL> <message>`, or a JSON object. */
export function lineLogger(
  format: LogFormat,
  write: (line: string) => void = line => void process.stdout.write(line),
): Logger {
  const log = (level: Level) => (fields: LogFields, message: string) => {
    const time = new Date().toISOString()
    write(
      format === 'json'
        ? JSON.stringify({ time, level, msg: message, ...fields }) + '\n'
        : `${time} ${level.toUpperCase().padEnd(5)} ${message}\n`,
    )
  }
  return { info: log('info'), warn: log('warn'), error: log('error') }
}
