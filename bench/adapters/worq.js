// worq under the benchmark: the built package (dist/), as users get it. WORQ_DIST=<absolute path
// of another build's index.js> measures that build instead (A/B runs of two builds, interleaved).
const { getBroker, task, TaskSpace, WorkerPool } = await import(
  process.env.WORQ_DIST ?? '../../dist/index.js'
)

export const name = 'worq'
export const stores = 'stored result, read back through Deferred.result()'

/** The reason printed, and shown in the table, when this build of worq has no Postgres backend. */
export const NO_POSTGRES = 'worq postgres backend not available in this build'

export async function create(url, { concurrency, queue: name = 'bench' }) {
  let broker
  try {
    broker = getBroker(url, name)
  } catch (err) {
    // The same adapter serves the Postgres rows with a postgres:// URL: before the backend lands,
    // getBroker refuses the scheme (BadUrl), and the rows are skipped with a printed reason.
    const refused =
      err?.code === 'ERR_WORQ_BAD_URL' || /not supported|unsupported/i.test(err?.message ?? '')
    if (/^postgres(ql)?:/.test(url) && refused) {
      console.error(`${NO_POSTGRES} (${err.message})`)
      return { skipped: NO_POSTGRES }
    }
    throw err
  }
  // WORQ_SETTINGS='{"events":false}' measures the queue with those settings.
  if (process.env.WORQ_SETTINGS) await broker.configure(JSON.parse(process.env.WORQ_SETTINGS))
  // Connect (load the Redis functions, or check the Postgres schema) and subscribe to outcomes
  // before the measured run, as the peers' adapters do (bee-queue's ready(), BullMQ's
  // waitUntilReady(), pg-boss's start(), graphile-worker's migrate()); worq would otherwise do it
  // on its first call, about 30 ms on Redis. (broker.backend() is internal: the hub's ready() is
  // what a first call awaits.)
  await broker.size()
  await (await broker.backend()).hub.ready()
  broker.expose(
    new TaskSpace('', {
      add: (a, b) => a + b,
      sum: xs => xs.reduce((s, x) => s + x, 0),
    }),
  )
  const q = broker.queue()
  let pool
  return {
    async startWorker() {
      // WORQ_POOL='{"lanes":1}' measures the pool with those options.
      pool = new WorkerPool(broker, { concurrency, ...JSON.parse(process.env.WORQ_POOL ?? '{}') })
      await pool.start()
    },
    add: (a, b) => q.add(a, b),
    addPriority: (a, b, priority) => task(q.add, { priority })(a, b),
    addBulk: pairs => Promise.all(pairs.map(([a, b]) => q.add(a, b))),
    result: d => d.result(120_000),
    graph: leaves => q.sum(leaves.map(([a, b]) => q.add(a, b))),
    async close() {
      await pool?.stop({ timeout: 5000 })
      await broker.close()
    },
  }
}
