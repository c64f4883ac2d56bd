/**
 * Outcome strings: what a finished task leaves behind. The first character is the status, the rest
 * its payload:
 *
 * | prefix | status | payload |
 * |---|---|---|
 * | `c` | completed | the value, serialized (lib/serializer.ts) |
 * | `f` | failed | a {@link FailureRecord}, serialized |
 * | `x` | expired | JSON `{taskName, queue, taskId, reason, attempts?}` (the Redis scripts write it too) |
 * | `k` | cancelled | JSON `{taskName, queue, taskId}` |
 *
 * A dependent that fails because of its argument (`onError: 'fail'`) keeps the argument's outcome
 * verbatim, so its failure names the argument's task and id.
 */
import { TaskCancelled, TaskExpired, TaskFailure, type RemoteError } from './errors.js'
import { decodeValue, encodeValue } from './serializer.js'
import { text } from './remote-error.js'
import type { FinalStatus } from './types.js'
import type { Finish } from './backends/records.js'

export { remoteError } from './remote-error.js'

/** A failure as it travels. */
export interface FailureRecord {
  taskName: string
  queue: string
  taskId: string
  remote: RemoteError
  attempts?: number
}

const STATUS: Record<string, FinalStatus> = {
  c: 'completed',
  f: 'failed',
  x: 'expired',
  k: 'cancelled',
}

/**
 * The status an outcome string records. One that starts with no known status (written by
 * something other than worq, or damaged) counts as `failed`: reading it gives a `BadMessage`
 * ({@link readStoredOutcome}), so a caller, a listing or a dashboard is told, not stopped.
 */
export function outcomeStatus(outcome: string): FinalStatus {
  return Object.hasOwn(STATUS, outcome.charAt(0)) ? STATUS[outcome.charAt(0)]! : 'failed'
}

/** A completed outcome. Throws a TypeError when the value cannot be sent faithfully. */
export function completedOutcome(value: unknown): string {
  return 'c' + encodeValue(value)
}

/** A failed outcome describing `error` thrown by task `taskName [queue:taskId]`. */
export function failedOutcome(record: FailureRecord): string {
  try {
    return 'f' + encodeValue(record)
  } catch {
    // A cause that cannot be serialized must not lose the failure itself: it goes as text.
  }
  const { cause, ...remote } = record.remote
  try {
    return 'f' + encodeValue({ ...record, remote: { ...remote, cause: text(cause) } })
  } catch {
    // Nor a name or message that is not text (remoteError() makes them text; this takes any).
    const { name, message, code } = remote
    const plain: RemoteError = { name: text(name), message: text(message) }
    if (typeof code === 'string') plain.code = code
    return 'f' + encodeValue({ ...record, remote: plain })
  }
}

/** An expired outcome. */
export function expiredOutcome(
  taskName: string,
  queue: string,
  taskId: string,
  reason: string,
  attempts?: number,
): string {
  return 'x' + JSON.stringify({ taskName, queue, taskId, reason, attempts })
}

/**
 * `outcome`, or, when it is over `limit` bytes, a failure of the task saying so (remote
 * `PayloadTooLarge`): what a backend stores in place of an outcome it must not keep. `task`
 * describes the task, asked only for an outcome over the limit (this runs on every finish).
 */
export function boundedOutcome(
  outcome: string,
  limit: number,
  task: () => { taskName: string; queue: string; taskId: string; attempts?: number },
): string {
  if (outcome.length <= limit / 4) return outcome
  const bytes = Buffer.byteLength(outcome)
  if (bytes <= limit) return outcome
  return failedOutcome({
    ...task(),
    remote: {
      name: 'PayloadTooLarge',
      message: `the result is ${bytes} bytes, over the limit of ${limit} bytes; store large data elsewhere and return a reference`,
    },
  })
}

/**
 * A finish's outcome bounded by `limit` ({@link boundedOutcome}): an oversize one fails naming the
 * task by the name and attempt its worker reported (else 'unknown').
 */
export function boundedFinish(queue: string, f: Finish, limit: number): string {
  return boundedOutcome(f.outcome, limit, () => ({
    taskName: f.name ?? 'unknown',
    queue,
    taskId: f.id,
    attempts: f.attempt,
  }))
}

/** The remote error an outcome that is not `c` records, for events and task info. */
export function outcomeError(outcome: string): {
  name: string
  message: string
  code?: string
  stack?: string
} {
  const read = readOutcome(outcome)
  if (read.ok) return { name: 'Error', message: 'the task completed' }
  const { name, message, stack } = read.error.remote
  const code =
    read.error.remote.code ??
    (read.error.code === 'ERR_WORQ_TASK_FAILED' ? undefined : read.error.code)
  return {
    name,
    message,
    ...(code !== undefined && { code }),
    ...(stack !== undefined && { stack }),
  }
}

/**
 * The remote error of an outcome that cannot be read: a record or row written by something other
 * than worq (or damaged), found where worq reads outcomes back (a Deferred's value, task info,
 * events).
 */
export function unreadableOutcome(err: unknown): RemoteError {
  return {
    name: 'BadMessage',
    code: 'ERR_WORQ_BAD_MESSAGE',
    message: `the task's outcome cannot be read: ${(err as Error)?.message ?? String(err)}`,
  }
}

/** {@link outcomeError}, or {@link unreadableOutcome} for an outcome it cannot read. */
export function storedOutcomeError(outcome: string): RemoteError {
  try {
    return outcomeError(outcome)
  } catch (err) {
    return unreadableOutcome(err)
  }
}

/**
 * {@link readOutcome} for a task known by name, queue and id: an outcome it cannot read is a
 * `TaskFailure` whose remote error is a `BadMessage` (code `ERR_WORQ_BAD_MESSAGE`), as a task whose
 * arguments cannot be read fails.
 */
export function readStoredOutcome(
  outcome: string,
  taskName: string,
  queue: string,
  taskId: string,
): { ok: true; value: unknown } | { ok: false; error: TaskFailure } {
  try {
    return readOutcome(outcome)
  } catch (err) {
    return { ok: false, error: new TaskFailure(taskName, queue, taskId, unreadableOutcome(err)) }
  }
}

/**
 * True when a backend can store `outcome` as a task's end: a completed one as it is (its value is
 * the caller's to read), any other only when {@link outcomeError} reads it (a known status and a
 * payload that decodes to what that status records).
 */
export function finalOutcomeReadable(outcome: string): boolean {
  if (outcome.charAt(0) === 'c') return true
  try {
    outcomeError(outcome)
    return true
  } catch {
    return false
  }
}

/** A cancelled outcome. */
export function cancelledOutcome(taskName: string, queue: string, taskId: string): string {
  return 'k' + JSON.stringify({ taskName, queue, taskId })
}

/** The value of a completed outcome, or the TaskFailure (or subclass) of any other. */
export function readOutcome(
  outcome: string,
): { ok: true; value: unknown } | { ok: false; error: TaskFailure } {
  const body = outcome.slice(1)
  switch (outcome.charAt(0)) {
    case 'c':
      return { ok: true, value: decodeValue(body) }
    case 'f': {
      const r = decodeValue(body) as FailureRecord
      return {
        ok: false,
        error: new TaskFailure(r.taskName, r.queue, r.taskId, r.remote, r.attempts),
      }
    }
    case 'x': {
      const r = JSON.parse(body) as FailureRecord & { reason: string }
      return {
        ok: false,
        error: new TaskExpired(r.taskName, r.queue, r.taskId, r.reason, r.attempts || undefined),
      }
    }
    case 'k': {
      const r = JSON.parse(body) as FailureRecord
      return { ok: false, error: new TaskCancelled(r.taskName, r.queue, r.taskId) }
    }
    default:
      throw new TypeError(`malformed outcome: starts with ${JSON.stringify(outcome.charAt(0))}`)
  }
}
