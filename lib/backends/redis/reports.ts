/**
 * What the Redis backend reports of tasks and queues, decoded from what the scripts return: a
 * task's state, a live record with its tokens value (processing) and progress, or an ended record
 * with its details (the formats of scripts/common.lua and scripts/outbox.lua), and a queue's
 * counts and workers.
 */
import type { QueueInfo, StoredInfo, TaskState, WorkerInfo } from '../backend.js'
import { outcomeStatus } from '../../outcome.js'
import { storedCall } from '../records.js'
import { decodeRecord, recordMade } from './codec.js'
import type { InfoReply } from './script-types.js'

/** A tokens hash value (read_held() in outbox.lua). */
export interface Held {
  attempt: number
  started: number
  name: string
  token: string
}

/** Reads a tokens hash value (read_held() in scripts/outbox.lua); undefined for another shape. */
export function readHeld(v: string): Held | undefined {
  const m =
    /^([^|]*)\|[a-z]*\|\d+\|\d+\|[^|]*\|[^|\n]*\n([^|]*)\|(\d+)\|\d+\|-?\d+\|(\d+)\|[^|]*\|(\d+)\|[01]$/.exec(
      v,
    )
  if (!m) return undefined
  return { token: m[1]!, name: m[2]!, started: epochMs(m[4]!, m[3]!), attempt: Number(m[5]) }
}

/**
 * A time the scripts stored: epoch ms, or (in values written before times were absolute) ms after
 * the task was enqueued at `enqueued`.
 */
function epochMs(stored: string, enqueued: string): number {
  const t = Number(stored)
  return t < 1e11 ? Number(enqueued) + t : t
}

/** The worker a token was given to (token_worker() in outbox.lua). */
export function tokenWorker(token: string): string | undefined {
  const i = token.lastIndexOf(':')
  return i > 0 ? token.slice(0, i) : undefined
}

function liveInfo(
  id: string,
  rec: string,
  tokens: string | false,
  progress: string | false,
  due: string | false,
): StoredInfo {
  const task = decodeRecord(id, rec)
  const held = tokens ? readHeld(tokens) : undefined
  const header = JSON.parse(rec.slice(rec.indexOf(':') + 1, rec.indexOf('\n'))) as { e?: number }
  const info: StoredInfo = {
    id,
    name: task.name,
    status: rec.charAt(0) === 'P' ? 'pending' : held ? 'processing' : 'enqueued',
    priority: task.priority,
    attempt: held ? held.attempt : recordMade(rec),
    attempts: task.attempts,
    createdAt: header.e ?? 0,
    call: storedCall(task),
  }
  if (progress) info.progress = progress
  if (task.metadata) info.metadata = task.metadata
  const runAt = due ? Number(due) : task.runAt > 0 ? task.runAt : undefined
  if (runAt !== undefined) info.runAt = runAt
  if (held) {
    info.startedAt = held.started
    const worker = tokenWorker(held.token)
    if (worker !== undefined) info.workerId = worker
  }
  return info
}

function endedInfo(id: string, rec: string): StoredInfo {
  const lines = rec.split('\n')
  const outcome = lines[0]!
  const [
    name = '?',
    enq = '0',
    attempts = '1',
    prio = '0',
    s = '',
    worker = '',
    attempt = '0',
    _holds = '0',
    flags = '',
    f = '',
  ] = (lines[3] ?? '').split('|')
  const created = Number(enq) || 0
  const info: StoredInfo = {
    id,
    name,
    status: outcomeStatus(outcome),
    priority: Number(prio) || 0,
    attempt: Number(attempt) || 0,
    attempts: Number(attempts) || 1,
    createdAt: created,
    outcome,
  }
  if (s !== '') info.startedAt = epochMs(s, enq)
  if (f !== '') info.finishedAt = epochMs(f, enq)
  if (worker !== '') info.workerId = worker
  if (flags.includes('C')) info.cached = true
  let header: string | undefined
  for (const line of lines.slice(4)) {
    const kind = line.charAt(0)
    if (kind === 'P') info.progress = line.slice(1)
    else if (kind === 'M') info.metadata = line.slice(1)
    else if (kind === 'H') header = line.slice(1)
    else if (kind === 'A' && header !== undefined)
      info.call = storedCall(decodeRecord(id, `E0:${header}\n${line.slice(1)}`))
  }
  return info
}

/** What info.lua (or a listing) returned of a task, as a backend reports it. */
export function storedInfo(
  id: string,
  rec: string,
  tokens: string | false,
  progress: string | false,
  due: string | false,
): StoredInfo {
  const live = rec.charAt(0) === 'P' || rec.charAt(0) === 'E'
  return live ? liveInfo(id, rec, tokens, progress, due) : endedInfo(id, rec)
}

/** What info.lua returned of task `id` (null: unknown), as a backend reports it. */
export function infoOf(id: string, reply: InfoReply | null): StoredInfo | null {
  if (!reply) return null
  // Lua's false arrives as null.
  const [rec, tokens, progress, due] = reply as unknown as Array<string | null>
  return storedInfo(id, rec!, tokens ?? false, progress ?? false, due ?? false)
}

/** A task's state from status.lua's reply: null, an outcome, or 'P' / 'E' / 'R'. */
export function taskState(s: string | null): TaskState | null {
  if (s === null) return null
  if (s === 'P') return { status: 'pending' }
  if (s === 'E') return { status: 'enqueued' }
  if (s === 'R') return { status: 'processing' }
  if (s.charAt(0) === 'C') {
    const outcome = 'c' + s.slice(1)
    return { status: 'completed', outcome, cached: true }
  }
  return { status: outcomeStatus(s), outcome: s }
}

/** A queue's counts, pause and live workers from inspect.lua's reply. */
export function queueInfo(
  reply: [number, number, number, number, number, number, string[], number],
): QueueInfo {
  const [waiting, delayed, pending, processing, oldest, now, flat, paused] = reply
  const workers: WorkerInfo[] = []
  for (let i = 1; i < flat.length; i += 2) {
    const info = JSON.parse(flat[i]!) as WorkerInfo
    workers.push({ ...info, seenAt: info.seenAt })
  }
  return {
    waiting,
    delayed,
    pending,
    processing,
    oldestWaitingMs: oldest < 0 ? null : Math.max(0, now - oldest),
    paused: paused === 1,
    workers,
  }
}
