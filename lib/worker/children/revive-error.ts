/**
 * Errors across the IPC channel: an abort reason travels as a RemoteError and is revived as an
 * Error with the same class name, message and code, so `this.signal.reason.name` reads the same in
 * a child process as in the worker's own (`TaskTimeout`, `LeaseLost`).
 */
import type { RemoteError } from '../../errors.js'

/** An Error with the remote's name, message and code. */
export function reviveError(remote: RemoteError): Error {
  const err = new Error(remote.message) as Error & { code?: string }
  err.name = remote.name
  if (remote.code !== undefined) err.code = remote.code
  return err
}
