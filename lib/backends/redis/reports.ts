/**
 * What the Redis backend reports of tasks, decoded from what the scripts store: a live record with
 * its tokens value (processing) and progress, or an ended record with its details (the formats of
 * scripts/common.lua).
 */
import type { StoredInfo } from '../backend.js'
import { outcomeStatus } from '../../outcome.js'
import { storedCall } from '../records.js'
import { decodeRecord, recordMade } from './codec.js'

/** A tokens hash value (read_held() in common.lua). */
export interface Held {
  attempt: number
  started: number
  name: string
  token: string
}

/** Reads a tokens hash value (read_held() in scripts/common.lua); undefined for another shape. */
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

/** The worker a token was given to (token_worker() in common.lua). */
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
