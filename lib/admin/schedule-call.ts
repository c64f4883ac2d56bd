/** A schedule as `broker.schedule()` stores it: its call checked and encoded once, its first due time. */
import { randomUUID } from 'node:crypto'
import type { StoredSchedule } from '../backends/backend.js'
import { encodeTask } from '../encode-task.js'
import { checkId, resolveOptions } from '../options.js'
import { callInfo } from '../queue.js'
import { resolveArgs } from '../resolve-args.js'
import { checkFaithful } from '../serializer.js'
import { checkSchedule, nextDue, type Schedule } from './schedules.js'

/**
 * Checks a schedule's id, timing and call, and encodes the call as the task each run enqueues.
 * A bad part is a `TypeError` that names it.
 */
export async function storedSchedule(
  id: string,
  when: Schedule,
  call: unknown,
  args: unknown[],
): Promise<StoredSchedule> {
  checkId(id)
  if (id.includes('@'))
    throw new TypeError('Expected the schedule `id` to have no "@" (runs are <id>@<time>)')
  const timing = checkSchedule(when)
  const info = callInfo(call)
  if (!info)
    throw new TypeError(
      'Expected `call` to be a queue function like q.reports.build, or task(q.reports.build, options)',
    )
  const opts = resolveOptions(info.defaults, info.options ?? {})
  // A schedule is stored at once, outside any transaction of the caller's, and each run is
  // enqueued later by a pool: a `tx` could only be dropped, so it is refused.
  if (opts.tx !== undefined)
    throw new TypeError(
      'Expected `call` to have no `tx` option: a schedule is stored when schedule() is called, not in your transaction, and its runs are enqueued later by worker pools; call schedule() once your transaction has committed, with a call made without `tx` (not task(fn, { tx }) or broker.transaction(client))',
    )
  const values = await resolveArgs(args)
  // Stored once and sent again for every run: a Deferred's result expires (resultTimeout), and
  // every run after that would fail; refused wherever the codec would find one.
  checkFaithful(values, 'args', new Set(), -1, storedDeferred)
  const now = Date.now()
  const {
    id: _id,
    runAt: _runAt,
    idChosen: _idChosen,
    ...task
  } = encodeTask(info.path, '-', values, opts, 0)
  const startAt = timing.startAt ?? ('every' in timing.when ? now + timing.when.every : undefined)
  const stored = {
    ...timing,
    ...(startAt !== undefined && { startAt }),
    id,
    name: info.path,
    task,
    // A new generation on every store, also of the same definition again (its runs start at 0):
    // a pool that read the one before cannot fire this one (Backend.fireSchedule).
    gen: randomUUID(),
    runs: 0,
    next: null as number | null,
  }
  stored.next = nextDue(stored, now - 1)
  // Only an endAt ends a schedule before its first run (a cron that never fires, and a limit,
  // are refused by checkSchedule): stored, it would be listed as ended and never run.
  if (stored.next === null && stored.endAt !== undefined)
    throw neverRuns({ ...stored, endAt: stored.endAt }, now)
  return stored
}

/** The TypeError of a Deferred at `path` (`args[1].items[0]`) among a schedule's arguments. */
function storedDeferred(path: string): TypeError {
  const position = Number(/^args\[(\d+)\]/.exec(path)?.[1] ?? 0) + 1
  return new TypeError(
    `Expected the arguments of schedule() to be values, but argument ${position} after \`call\` (${path}) is a Deferred: a schedule's arguments are stored once and reused for every run, and a Deferred's result expires after its resultTimeout, failing every run from then on; pass a plain value instead (await d.result(ms)), or have the task compute it`,
  )
}

/** The TypeError of a schedule whose `endAt` comes before its first due time. */
function neverRuns(s: Parameters<typeof nextDue>[0] & { endAt: number }, now: number): TypeError {
  const { endAt, ...unending } = s
  const iso = (ms: number) => new Date(ms).toISOString()
  if (endAt <= now)
    return new TypeError(
      `Expected \`endAt\` to be in the future, got ${iso(endAt)} (now is ${iso(now)}): the schedule would be stored already ended and never run; give a later \`endAt\`, or leave it out`,
    )
  // Without the endAt, the first due time (checkSchedule refused timings that never fire).
  const first = nextDue(unending, now - 1)!
  return new TypeError(
    `Expected \`endAt\` to be at or after the schedule's first due time, ${iso(first)}, got ${iso(endAt)}: the schedule would never run; give a later \`endAt\``,
  )
}
