// BullMQ under the benchmark: Queue + Worker + QueueEvents, results read with waitUntilFinished.
import { FlowProducer, Queue, QueueEvents, Worker } from 'bullmq'

export const name = 'bullmq'
export const stores = 'returnvalue in the job hash, read back through job.waitUntilFinished()'

export async function create(url, { concurrency }) {
  const { hostname: host, port } = new URL(url)
  const connection = { host, port: Number(port), maxRetriesPerRequest: null }
  const queue = new Queue('bench', { connection })
  const events = new QueueEvents('bench', { connection })
  await events.waitUntilReady()
  let worker
  let flow
  return {
    async startWorker() {
      worker = new Worker(
        'bench',
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
    addBulk: pairs => queue.addBulk(pairs.map(([a, b]) => ({ name: 'add', data: { a, b } }))),
    result: job => job.waitUntilFinished(events, 120_000),
    async graph(leaves) {
      flow ??= new FlowProducer({ connection })
      const node = await flow.add({
        name: 'sum',
        queueName: 'bench',
        children: leaves.map(([a, b]) => ({ name: 'add', queueName: 'bench', data: { a, b } })),
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
