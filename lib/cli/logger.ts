/**
 * The CLI's loggers: one line per event, as text or JSON, for the library's `Logger` interface
 * (pino's shape, lib/worker/log-events.ts). The library never prints: only these loggers write,
 * and only the CLI creates them.
 */
import type { LogFields, Logger } from '../worker/log-events.js'

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
