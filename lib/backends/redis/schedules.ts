/**
 * Schedules on Redis (scripts/schedule.lua): a schedule's definition as JSON in hash `sched`, and
 * its state ("<next due>|<last due>|<runs>") in hash `sstate`, which `fire` changes atomically.
 */
import type { Connection as Redis } from './connections.js'
import type { StoredSchedule } from '../backend.js'
import { readableSchedule } from '../queue-records.js'
import { queueKey } from './keys.js'

type Definition = Omit<StoredSchedule, 'next' | 'last' | 'runs'>

/** A schedule's definition, as stored. */
export function scheduleDefinition(s: StoredSchedule): string {
  const { next: _next, last: _last, runs: _runs, ...definition } = s
  return JSON.stringify(definition satisfies Definition)
}

/** A schedule's state, as stored. */
export function scheduleState(s: StoredSchedule): string {
  return `${s.next ?? ''}|${s.last ?? ''}|${s.runs}`
}

/** Every schedule of a queue. */
export async function readSchedules(cmd: Redis, queue: string): Promise<StoredSchedule[]> {
  const [defs, states] = await Promise.all([
    cmd.hgetall(queueKey(queue, 'sched')),
    cmd.hgetall(queueKey(queue, 'sstate')),
  ])
  const out: StoredSchedule[] = []
  for (const [id, json] of Object.entries(defs)) {
    let def: Definition
    try {
      def = JSON.parse(json) as Definition
    } catch {
      continue
    }
    const [next = '', last = '', runs = '0'] = (states[id] ?? '').split('|')
    const s: StoredSchedule = {
      ...def,
      next: next === '' ? null : Number(next),
      runs: Number(runs) || 0,
    }
    if (last !== '') s.last = Number(last)
    // A definition that does not read as one (written by something other than worq) is left out.
    if (readableSchedule(s)) out.push(s)
  }
  return out
}
