/**
 * Listing tasks on Redis (docs/tasks.md): list.lua reads the listing index newest first in steps of
 * bounded work (a step reads at most STEP_BUDGET index entries, so no call holds Redis long); this
 * loop calls steps until the page is full or the index is read, carrying the offset still to skip
 * and where to go on.
 */
import type { ListQuery, StoredInfo } from '../backend.js'
import { storedInfo } from './reports.js'
import type { Scripts } from './scripts.js'

/** Index entries one step may read. */
const STEP_BUDGET = 2000

/** The page `query` asks for, or 'off' when the queue's listing setting is off. */
export async function listTasks(
  scripts: Scripts,
  queue: string,
  query: ListQuery,
): Promise<StoredInfo[] | 'off'> {
  const found: StoredInfo[] = []
  const before = query.createdBefore === undefined ? '' : String(query.createdBefore)
  const after = query.createdAfter === undefined ? '' : String(query.createdAfter)
  let skip = query.offset
  let cursor = ''
  for (;;) {
    const reply = await scripts.list(queue, {
      statuses: (query.statuses ?? []).join(','),
      name: query.name ?? '',
      before,
      after,
      skip,
      want: query.limit - found.length,
      cursor,
      budget: STEP_BUDGET,
    })
    if (reply[0] === 'off') return 'off'
    // Lua's false arrives as null.
    const [matches, skipped, next] = reply as [Array<string | null>, number, string | null]
    skip -= skipped
    for (let i = 0; i + 3 < matches.length; i += 4)
      found.push(
        storedInfo(
          matches[i] as string,
          matches[i + 1] as string,
          matches[i + 2] ?? false,
          matches[i + 3] ?? false,
          false,
        ),
      )
    if (found.length >= query.limit || !next) return found
    cursor = next
  }
}
