// bee-queue under the benchmark: results are not stored by bee-queue; they arrive by event only,
// so "read back" here means the event reached the producer. The queue-level 'job succeeded' event
// (by job id) is used: a job-level 'succeeded' is dropped when a worker in another process
// finishes the job before the producer has its save's reply.
import Queue from 'bee-queue'

export const name = 'bee-queue'
export const stores = 'not stored: delivered once by the job "succeeded" event'

export async function create(url, { concurrency, worker, queue: name = 'bench' }) {
  const { hostname: host, port } = new URL(url)
  const queue = new Queue(name, {
    redis: { host, port: Number(port) },
    isWorker: !!worker,
    removeOnSuccess: false,
    storeJobs: false,
  })
  await queue.ready()
  const readers = new Map()
  const early = new Map()
  const settle = (id, outcome) => {
    const reader = readers.get(id)
    if (reader) {
      readers.delete(id)
      reader(outcome)
    } else early.set(id, outcome)
  }
  queue.on('job succeeded', (id, value) => settle(id, { value }))
  queue.on('job failed', (id, error) => settle(id, { error }))
  const read = job =>
    new Promise((resolve, reject) => {
      const done = ({ value, error }) => (error === undefined ? resolve(value) : reject(error))
      const outcome = early.get(job.id)
      if (outcome) {
        early.delete(job.id)
        done(outcome)
      } else readers.set(job.id, done)
    })
  return {
    async startWorker() {
      queue.process(concurrency, async job => job.data.a + job.data.b)
    },
    add: async (a, b) => queue.createJob({ a, b }).save(),
    async addBulk(pairs) {
      const jobs = pairs.map(([a, b]) => queue.createJob({ a, b }))
      await queue.saveAll(jobs)
      return jobs
    },
    result: read,
    // bee-queue has no priorities.
    addPriority: null,
    graph: null,
    async close() {
      await queue.close(5000)
    },
  }
}
