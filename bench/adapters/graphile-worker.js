// graphile-worker under the benchmark, with the batching its performance page recommends for high
// throughput: a local queue (jobs locked and fetched in batches; GW_LOCAL_QUEUE, default 500, -1
// turns it off) and completions released in batches (completeJobBatchDelay 0: whatever completes
// in the same tick goes in one statement). `concurrency` jobs at once, a pool of concurrency + 2
// connections as its docs advise, LISTEN/NOTIFY wake-ups (built in; pollInterval stays the 2 s
// fallback). Jobs are added through WorkerUtils (addJob, addJobs for bulk), as a producer does.
//
// graphile-worker stores no results, and a finished job's row is deleted. So there is no read-back:
// the handler's value is kept in the worker's memory and the producer is told through the runner's
// in-process `job:success` event, which graphile-worker emits when the task function has resolved,
// before its completion is written (batched). That only works with the worker in the producer's
// process: the deployment row (workers in other processes) is skipped.
import { Logger, makeWorkerUtils, run } from 'graphile-worker'

export const name = 'graphile-worker'
/** The table marks this library's result-reading rows: it has no results to read back. */
export const readsBack = false
export const stores =
  'nothing: completion by the in-process job:success event, value from the worker’s memory'

const LOCAL_QUEUE = Number(process.env.GW_LOCAL_QUEUE ?? 500)
const silent = new Logger(() => () => {})

export async function create(url, { concurrency, scenario }) {
  // The deploy scenario runs its workers in other processes, where job:success cannot be seen.
  if (scenario === 'deploy' || scenario === 'worker')
    return { skipped: 'no result storage: completion is visible only in the worker’s process' }
  const utils = await makeWorkerUtils({ connectionString: url, logger: silent })
  await utils.migrate()
  const values = new Map() // job id → the handler's value, until the producer takes it
  const readers = new Map()
  const early = new Map()
  const settle = (id, outcome) => {
    const reader = readers.get(id)
    if (reader) {
      readers.delete(id)
      reader(outcome)
    } else early.set(id, outcome)
  }
  let runner
  return {
    async startWorker() {
      runner = await run({
        connectionString: url,
        concurrency,
        maxPoolSize: Math.max(10, concurrency + 2),
        noHandleSignals: true,
        logger: silent,
        taskList: {
          add: async (payload, helpers) => {
            const value = payload.a + payload.b
            values.set(helpers.job.id, value)
            return value
          },
        },
        preset: {
          worker: {
            localQueue: { size: LOCAL_QUEUE },
            completeJobBatchDelay: 0,
            failJobBatchDelay: 0,
          },
        },
      })
      runner.events.on('job:success', ({ job }) => {
        const value = values.get(job.id)
        values.delete(job.id)
        settle(job.id, { value })
      })
      runner.events.on('job:failed', ({ job, error }) => settle(job.id, { error }))
    },
    add: (a, b) => utils.addJob('add', { a, b }),
    // graphile-worker runs numerically smaller priorities first, as the runner's levels do.
    addPriority: (a, b, level) => utils.addJob('add', { a, b }, { priority: level }),
    addBulk: pairs =>
      utils.addJobs(pairs.map(([a, b]) => ({ identifier: 'add', payload: { a, b } }))),
    result: job =>
      new Promise((resolve, reject) => {
        const done = ({ value, error }) => (error === undefined ? resolve(value) : reject(error))
        const outcome = early.get(job.id)
        if (outcome) {
          early.delete(job.id)
          done(outcome)
        } else readers.set(job.id, done)
      }),
    graph: null,
    async close() {
      await runner?.stop()
      await utils.release()
    },
  }
}
