/**
 * A batch of new tasks as enqueue.lua calls. A batch goes as several calls, each written as soon
 * as it is encoded and none awaited before the next is sent: Redis runs one call while Node
 * encodes the next (the two share the machine's cores), and a call stays short however big the
 * batch.
 */
import type { NewTask } from '../backend.js'
import { encodeTask } from './codec.js'
import type { EnqueueEntry, EnqueueReply, Scripts } from './scripts.js'

/** Tasks per enqueue.lua call… */
const ENQUEUE_CHUNK = 250
/** …and about this many characters of records per call (big payloads go a few at a time). */
const ENQUEUE_CHARS = 2 * 1024 * 1024

/**
 * Sends `tasks` to enqueue.lua on `queue` in chunks; the calls' replies, in order (see
 * Scripts.enqueue). `client` gets the outcomes; `self` takes its own in the replies ('' = none).
 */
export function enqueueChunks(
  scripts: Scripts,
  queue: string,
  client: string,
  self: string,
  tasks: readonly NewTask[],
): Array<Promise<EnqueueReply>> {
  const now = Date.now()
  const entries: EnqueueEntry[] = []
  const calls: Array<Promise<EnqueueReply>> = []
  let from = 0
  let chars = 0
  for (const task of tasks) {
    const entry = encodeTask(task, client, now)
    entries.push(entry)
    chars += entry.body.length
    if (entries.length - from === ENQUEUE_CHUNK || chars >= ENQUEUE_CHARS) {
      calls.push(scripts.enqueue(queue, self, entries, from, entries.length))
      from = entries.length
      chars = 0
    }
  }
  if (from < entries.length) calls.push(scripts.enqueue(queue, self, entries, from))
  return calls
}
