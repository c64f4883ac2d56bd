/**
 * What a worker's exchange tells exchange.lua of its runs' times, for the queue's wait- and
 * run-time histograms (observe.lua): the counts of a whole exchange, and each finish's own times,
 * which the script takes back for a finish it refuses.
 */
import { timeBucket, type Finish } from '../backend.js'

/**
 * The wait- and run-time histogram counts of the runs `done` reports (`w<bucket>=<n>`, `ws=<sum>`,
 * `t…`, `ts`, comma-separated), which exchange.lua adds to the queue's metrics in one step.
 */
export function histogramFields(done: readonly Finish[]): string {
  // Built as one string, not as an array then joined: an exchange that finished no run (a lane's
  // first, a woken one's) joined an empty array, of another map than the others, and V8 threw away
  // this function's optimised code for it (compiled three times in a run of 20 000 calls).
  if (done.length === 0) return ''
  const counts = new Map<string, number>()
  for (const f of done) {
    if (f.release) continue
    if (f.waitMs !== undefined) {
      addCount(counts, `w${timeBucket(f.waitMs)}`, 1)
      addCount(counts, 'ws', Math.round(f.waitMs))
    }
    // A cancelled run's too: the cancel that ended it left the count to this finish (store.lua).
    if (f.runMs !== undefined) {
      addCount(counts, `t${timeBucket(f.runMs)}`, 1)
      addCount(counts, 'ts', Math.round(f.runMs))
    }
  }
  // A sum of 0 (runs under half a millisecond) adds nothing: left out, it costs the script no
  // HINCRBY (a reader takes a missing field as 0).
  let fields = ''
  counts.forEach((n, field) => {
    if (n !== 0) fields += fields === '' ? `${field}=${n}` : `,${field}=${n}`
  })
  return fields
}

/**
 * The wait and run times of each of `done`, for exchange.lua to take back a refused finish's share
 * of histogramFields(): `<waitMs>,<runMs>;` per finish, in order ('' for a time it lacks; a
 * release's are left out, as histogramFields() leaves them). '' for one finish or none: a lone
 * finish's share is all of histogramFields().
 */
export function finishTimes(done: readonly Finish[]): string {
  if (done.length < 2) return ''
  let each = ''
  for (const f of done) each += f.release ? ',;' : `${f.waitMs ?? ''},${f.runMs ?? ''};`
  return each
}

function addCount(counts: Map<string, number>, field: string, n: number): void {
  counts.set(field, (counts.get(field) ?? 0) + n)
}
