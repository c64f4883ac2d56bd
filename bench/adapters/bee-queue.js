// bee-queue under the benchmark: results are not stored by bee-queue; they arrive by event only
// (job 'succeeded'), so "read back" here means the event reached the producer.
import Queue from 'bee-queue'

export const name = 'bee-queue'
export const stores = 'not stored: delivered once by the job "succeeded" event'

export async function create(url, { concurrency, worker }) {
  const { hostname: host, port } = new URL(url)
  const queue = new Queue('bench', {
    redis: { host, port: Number(port) },
    isWorker: !!worker,
    removeOnSuccess: false,
  })
  await queue.ready()
  const track = job => {
    job.done = new Promise((resolve, reject) => {
      job.on('succeeded', resolve)
      job.on('failed', reject)
    })
    return job
  }
  return {
    async startWorker() {
      queue.process(concurrency, async job => job.data.a + job.data.b)
    },
    add: async (a, b) => track(queue.createJob({ a, b })).save(),
    async addBulk(pairs) {
      const jobs = pairs.map(([a, b]) => track(queue.createJob({ a, b })))
      await queue.saveAll(jobs)
      return jobs
    },
    result: job => job.done,
    graph: null,
    async close() {
      await queue.close(5000)
    },
  }
}
