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

/** Lines written to a stream that may close under the writer: {@link guardedLines}. */
export interface GuardedLines {
  /** Writes `line` while the stream works; drops it once it failed. */
  write(line: string): void
  /** Stops listening for the stream's errors (kept once it failed: later ones are dropped too). */
  dispose(): void
}

/**
 * Writes lines to `stream` until it fails — EPIPE once the reader of a pipe has gone
 * (`worq worker | head -n 1`) — then drops them, and tells `onClosed` once. The stream's 'error'
 * event is never left unhandled, which would end the process.
 */
export function guardedLines(
  stream: NodeJS.WritableStream,
  onClosed: (err: Error) => void = () => undefined,
): GuardedLines {
  let failed: Error | undefined
  const onError = (err: Error) => {
    if (failed) return
    failed = err
    onClosed(err)
  }
  stream.on('error', onError)
  return {
    write(line) {
      if (!failed) stream.write(line)
    },
    dispose() {
      if (!failed) stream.off('error', onError)
    },
  }
}
