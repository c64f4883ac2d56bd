// BullMQ under the benchmark: Queue + Worker + QueueEvents. Results are read through one QueueEvents
// listener that settles a promise per job id, the fastest way BullMQ offers a producer;
// BULLMQ_RESULTS=wait reads them with job.waitUntilFinished() per job instead (slower).
import { FlowProducer, Queue, QueueEvents, Worker } from 'bullmq'

export const name = 'bullmq'
export const stores = 'returnvalue in the job hash, read back through one QueueEvents listener'

/** Settles one promise per job id from the QueueEvents stream; early events wait for a reader. */
function listen(events) {
  const readers = new Map()
  const early = new Map()
  const settle = (jobId, outcome) => {
    const reader = readers.get(jobId)
    if (reader) {
      readers.delete(jobId)
      reader(outcome)
    } else early.set(jobId, outcome)
  }
  events.on('completed', ({ jobId, returnvalue }) => settle(jobId, { value: returnvalue }))
  events.on('failed', ({ jobId, failedReason }) => settle(jobId, { error: failedReason }))
  return job =>
    new Promise((resolve, reject) => {
      const done = ({ value, error }) =>
        error === undefined
          ? resolve(typeof value === 'string' ? JSON.parse(value) : value)
          : reject(new Error(error))
      const outcome = early.get(job.id)
      if (outcome) {
        early.delete(job.id)
        done(outcome)
      } else readers.set(job.id, done)
    })
}

export async function create(url, { concurrency, queue: name = 'bench' }) {
  const { hostname: host, port } = new URL(url)
  const connection = { host, port: Number(port), maxRetriesPerRequest: null }
  const queue = new Queue(name, { connection })
  const events = new QueueEvents(name, { connection })
  await events.waitUntilReady()
  const read =
    process.env.BULLMQ_RESULTS === 'wait'
      ? job => job.waitUntilFinished(events, 120_000)
      : listen(events)
  let worker
  let flow
  return {
    async startWorker() {
      worker = new Worker(
        name,
        async job => {
          if (job.name === 'add') return job.data.a + job.data.b
          const values = await job.getChildrenValues()
          return Object.values(values).reduce((s, x) => s + x, 0)
        },
        { connection, concurrency },
      )
      await worker.waitUntilReady()
    },
    add: (a, b) => queue.add('add', { a, b }),
    addPriority: (a, b, priority) => queue.add('add', { a, b }, { priority }),
    addBulk: pairs => queue.addBulk(pairs.map(([a, b]) => ({ name: 'add', data: { a, b } }))),
    result: read,
    async graph(leaves) {
      flow ??= new FlowProducer({ connection })
      const node = await flow.add({
        name: 'sum',
        queueName: name,
        children: leaves.map(([a, b]) => ({ name: 'add', queueName: name, data: { a, b } })),
      })
      return node.job
    },
    async close() {
      await worker?.close()
      await flow?.close()
      await events.close()
      await queue.close()
    },
  }
}
