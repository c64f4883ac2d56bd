// pg-boss under the benchmark, configured for speed as its docs describe: LISTEN/NOTIFY on
// (`useListenNotify` and a `notify: true` queue), so idle workers wake when a job is created rather
// than at their next poll; `localConcurrency` workers in the process; the handler's return value
// stored as the job's `output`.
//
// pg-boss has no call that waits for a job to finish: a producer reads a finished job back
// (`findJobs`/`getJobById`, state and output). Doing that job by job costs a query per pending job
// per poll, so the adapter polls the documented job table once for every pending job
// (`SELECT id, state, output FROM pgboss.job WHERE name = $1 AND id = ANY($2)`, through pg-boss's
// own pool) and again at once while it keeps finding finished jobs, after PGBOSS_RESULT_POLL_MS
// (default 2) when it finds none. PGBOSS_RESULTS=findJobs reads each job through `findJobs` instead.
// Workers: concurrency / PGBOSS_BATCH of them (localConcurrency; at least one), each fetching
// PGBOSS_BATCH jobs per query (batchSize, default 10, with perJobResults so that every job keeps
// its own output, and burstWhenBatchFull so that a worker whose fetch came back full fetches again
// at once): up to `concurrency` jobs held at once (10 at c=1, where the handler, synchronous, still
// runs one at a time). Every worker wakes on each NOTIFY, so `concurrency` workers fetching one job
// each (PGBOSS_BATCH=1) make a herd of fetches per job: about half the speed at c=50.
// A pg-boss worker sleeps its polling interval after each fetch unless a
// NOTIFY or a full batch wakes it; with batchSize 1 no burst mode applies, and a queue filled before
// the workers start drains one job per worker per interval (30 s with NOTIFY on).
import { randomUUID } from 'node:crypto'
import { PgBoss } from 'pg-boss'

export const name = 'pg-boss'
export const stores = 'output in the job row, read back by polling the job table'

const QUEUE = 'bench'
const POLL_MS = Number(process.env.PGBOSS_RESULT_POLL_MS ?? 2)
const BATCH = Number(process.env.PGBOSS_BATCH ?? 10)

export async function create(url, { concurrency }) {
  const boss = new PgBoss({
    connectionString: url,
    // The workers' fetches and completions, the producer's sends and the result poll share it.
    max: Math.max(10, Math.ceil(concurrency / BATCH) + 4),
    useListenNotify: true,
    schedule: false, // no cron in the benchmark
  })
  boss.on('error', err => console.error('pg-boss error:', err.message))
  await boss.start()
  await boss.createQueue(QUEUE, { notify: true })
  const db = boss.getDb()

  // Results: one promise per job id, settled by the poller.
  const readers = new Map()
  let polling = false
  const settle = (id, row) => {
    const reader = readers.get(id)
    if (!reader) return false
    if (row.state === 'completed') {
      readers.delete(id)
      reader.resolve(row.output?.value) // pg-boss stores a scalar as { value }
      return true
    }
    if (row.state === 'failed' || row.state === 'cancelled') {
      readers.delete(id)
      reader.reject(new Error(`job ${id} ${row.state}: ${JSON.stringify(row.output)}`))
      return true
    }
    return false
  }
  async function pollOnce() {
    const ids = [...readers.keys()].slice(0, 5000)
    let found = 0
    if (process.env.PGBOSS_RESULTS === 'findJobs') {
      const jobs = await Promise.all(ids.map(id => boss.findJobs(QUEUE, { id })))
      for (const [job] of jobs) if (job && settle(job.id, job)) found++
    } else {
      const { rows } = await db.executeSql(
        `SELECT id, state, output FROM pgboss.job WHERE name = $1 AND id = ANY($2::uuid[])
           AND state IN ('completed', 'failed', 'cancelled')`,
        [QUEUE, ids],
      )
      for (const row of rows) if (settle(row.id, row)) found++
    }
    return found
  }
  async function poll() {
    if (polling) return
    polling = true
    try {
      while (readers.size > 0) {
        const found = await pollOnce()
        if (found === 0) await new Promise(r => setTimeout(r, POLL_MS))
      }
    } catch (err) {
      for (const r of readers.values()) r.reject(err)
      readers.clear()
    } finally {
      polling = false
    }
  }
  const read = id =>
    new Promise((resolve, reject) => {
      readers.set(id, { resolve, reject })
      poll()
    })

  let workId
  return {
    async startWorker() {
      workId =
        BATCH > 1
          ? await boss.work(
              QUEUE,
              {
                localConcurrency: Math.max(1, Math.ceil(concurrency / BATCH)),
                batchSize: BATCH,
                perJobResults: true,
                burstWhenBatchFull: true,
              },
              async jobs =>
                jobs.map(job => ({
                  id: job.id,
                  status: 'completed',
                  output: job.data.a + job.data.b,
                })),
            )
          : await boss.work(
              QUEUE,
              { localConcurrency: Math.max(1, concurrency) },
              async ([job]) => job.data.a + job.data.b,
            )
    },
    add: (a, b) => boss.send(QUEUE, { a, b }),
    // pg-boss runs higher numbers first; the runner's levels run lower numbers first.
    addPriority: (a, b, level) => boss.send(QUEUE, { a, b }, { priority: 10 - level }),
    addBulk: pairs =>
      boss.insert(
        QUEUE,
        pairs.map(([a, b]) => ({ id: randomUUID(), data: { a, b } })),
        { returnId: true },
      ),
    result: read,
    graph: null,
    async close() {
      if (workId) await boss.offWork(QUEUE)
      await boss.stop({ graceful: true, timeout: 5000 })
    },
  }
}
