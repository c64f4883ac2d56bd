// worq measured as graphile-worker is (bench/adapters/graphile-worker.js): every call with
// `ignoreResult` (no outcome is stored; the record goes when the task ends), and the producer told
// of each completion through the pool's in-process `task:end` event, which the pool emits when the
// task function has resolved, before its finish is sent. Like graphile-worker's, it only works with
// the worker in the producer's process (the deployment row is skipped) and reads nothing back; the
// value is taken from the worker's memory. It answers the question graphile-worker's † rows leave
// open: how worq compares when it, too, keeps no results (docs/benchmarks.md, "Without results").
//
//   BENCH_URL=postgres://… node bench/runner.js worq-noresult drain 5000 50
//
// Calls get ids of their own (`<run>-0`, `<run>-1`, …): an ignoreResult call returns no Deferred.
const { getBroker, task, taskContext, TaskSpace, WorkerPool } = await import(
  process.env.WORQ_DIST ?? '../../dist/index.js'
)

export const name = 'worq-noresult'
/** Marks the rows where this adapter reads nothing back, as graphile-worker's are. */
export const readsBack = false
export const stores = 'nothing (ignoreResult): completion by the pool’s in-process task:end event'

export async function create(url, { concurrency, queue: name = 'bench', scenario }) {
  if (scenario === 'deploy' || scenario === 'worker')
    return { skipped: 'no result storage: completion is visible only in the worker’s process' }
  const broker = getBroker(url, name)
  if (process.env.WORQ_SETTINGS) await broker.configure(JSON.parse(process.env.WORQ_SETTINGS))
  // Connected before the measured run, as the worq adapter is.
  await broker.size()
  await (await broker.backend()).hub.ready()
  // The value is kept in the worker's memory for the producer, as graphile-worker's adapter does.
  const values = new Map()
  broker.expose(
    new TaskSpace('', {
      add: (a, b) => {
        values.set(taskContext().taskId, a + b)
        return a + b
      },
    }),
  )
  const q = broker.queue()
  const readers = new Map()
  const early = new Map()
  const settle = (id, status) => {
    const outcome = { status, value: values.get(id) }
    values.delete(id)
    const reader = readers.get(id)
    if (reader) {
      readers.delete(id)
      reader(outcome)
    } else early.set(id, outcome)
  }
  const run = Math.random().toString(36).slice(2, 10)
  let seq = 0
  const call = async (a, b, options) => {
    const id = `${run}-${seq++}`
    await task(q.add, { ...options, ignoreResult: true, id })(a, b)
    return id
  }
  let pool
  return {
    async startWorker() {
      pool = new WorkerPool(broker, { concurrency })
      pool.on('task:end', ({ id, status }) => settle(id, status))
      await pool.start()
    },
    add: (a, b) => call(a, b),
    addPriority: (a, b, priority) => call(a, b, { priority }),
    addBulk: pairs => Promise.all(pairs.map(([a, b]) => call(a, b))),
    result: id =>
      new Promise((resolve, reject) => {
        const done = ({ status, value }) =>
          status === 'completed' ? resolve(value) : reject(new Error(`task ${id}: ${status}`))
        const outcome = early.get(id)
        if (outcome) {
          early.delete(id)
          done(outcome)
        } else readers.set(id, done)
      }),
    graph: null,
    async close() {
      await pool?.stop({ timeout: 5000 })
      await broker.close()
    },
  }
}
