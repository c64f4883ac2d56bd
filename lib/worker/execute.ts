/**
 * Runs one reserved task in this process and turns whatever happens into a Finish: a value, a
 * throw, a missing function, arguments that cannot be read, a result that cannot be sent.
 */
import { backoffDelay, type Finish, type ReservedTask } from '../backends/backend.js'
import { completedOutcome, failedOutcome, readOutcome, remoteError } from '../outcome.js'
import { decodeCall } from '../serializer.js'
import type { RemoteError } from '../errors.js'
import type { TaskFunction } from '../types.js'

/** Errors that no retry can mend. */
const PERMANENT = new Set(['NoSuchTask', 'BadMessage', 'UnserializableResult'])

/** Finds an exposed function by name. */
export type Lookup = (name: string) => TaskFunction | undefined

/** Runs `task` and reports how it ended. */
export async function execute(task: ReservedTask, queue: string, lookup: Lookup): Promise<Finish> {
  const fn = lookup(task.name)
  if (!fn) {
    return fail(task, queue, {
      name: 'NoSuchTask',
      message: `no worker of queue "${queue}" exposes a task named "${task.name}"; expose it with broker.expose(space)`,
    })
  }
  let args: unknown[]
  try {
    args = decodeCall(task.payload, i => {
      const slot = task.slots[i]
      if (slot === undefined) throw new TypeError(`argument reference ${i} has no value`)
      const read = readOutcome(slot)
      return read.ok ? read.value : read.error
    })
  } catch (err) {
    return fail(task, queue, {
      name: 'BadMessage',
      message: `the task's arguments cannot be read: ${(err as Error).message}`,
    })
  }
  let value: unknown
  try {
    value = await fn(...args)
  } catch (err) {
    return fail(task, queue, remoteError(err))
  }
  try {
    return { id: task.id, token: task.token, outcome: completedOutcome(value) }
  } catch (err) {
    return fail(task, queue, {
      name: 'UnserializableResult',
      message: `the result cannot be sent faithfully: ${(err as Error).message}`,
    })
  }
}

/** A failure: retried after the backoff while attempts remain, else final. */
export function fail(task: ReservedTask, queue: string, remote: RemoteError): Finish {
  const finish: Finish = {
    id: task.id,
    token: task.token,
    outcome: failedOutcome({
      taskName: task.name,
      queue,
      taskId: task.id,
      remote,
      attempts: task.attempt,
    }),
  }
  if (task.attempt < task.attempts && !PERMANENT.has(remote.name))
    finish.retryAt = Date.now() + backoffDelay(task.backoff, task.attempt, Math.random())
  return finish
}
