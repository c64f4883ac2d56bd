// One sequential call, hop by hop: every socket write to Redis and every read from it, timed from
// the call, for worq (the built package) or bee-queue, producer and worker in one process.
// REDIS_URL=redis://127.0.0.1:6379/0 node bench/trace.js [worq|bee-queue] [calls=3000]
// (a Redis you may write to). Prints the median time of each event, over the calls that show the
// most common sequence of events, after the first 500. The hooks add a few µs to every event.
// WORQ_DIST=<absolute path of another build's index.js> traces that build instead of dist/.
import net from 'node:net'

const library = process.argv[2] ?? 'worq'
const calls = Number(process.argv[3] ?? 3000)
const url = process.env.REDIS_URL
const port = Number(new URL(url).port)

let t0 = 0
let events = []
const mark = (what, detail = '') => events.push([what, performance.now() - t0, detail])

const write = net.Socket.prototype.write
net.Socket.prototype.write = function (chunk, ...rest) {
  if (this.remotePort !== port) return write.call(this, chunk, ...rest)
  const command = /^\*\d+\r\n\$\d+\r\n([^\r]+)/.exec(String(chunk).slice(0, 40))?.[1] ?? ''
  mark('write', command.toLowerCase())
  const ok = write.call(this, chunk, ...rest)
  mark('written')
  return ok
}
const emit = net.Socket.prototype.emit
net.Socket.prototype.emit = function (name, ...args) {
  if (name === 'data' && this.remotePort === port) mark('read', `${args[0].length} B`)
  return emit.call(this, name, ...args)
}

/** Enqueues one `add(i, 1)`, marks 'enqueued' and 'run', resolves with the result. */
async function subject() {
  if (library === 'worq') {
    const { getBroker, TaskSpace, WorkerPool } = await import(
      process.env.WORQ_DIST ?? '../dist/index.js'
    )
    const broker = getBroker(url, `trace-${Date.now()}`).expose(
      new TaskSpace('', {
        add: (a, b) => {
          mark('run')
          return a + b
        },
      }),
    )
    const pool = new WorkerPool(broker, { concurrency: 1 })
    await pool.start()
    const q = broker.queue()
    return {
      async call(i) {
        const d = await q.add(i, 1)
        mark('enqueued')
        return d.result(5000)
      },
      async close() {
        await pool.stop()
        await broker.purge()
        await broker.close()
      },
    }
  }
  const { default: Queue } = await import('bee-queue')
  const queue = new Queue(`trace-${Date.now()}`, {
    redis: { host: '127.0.0.1', port },
    removeOnSuccess: true,
  })
  await queue.ready()
  queue.process(1, async job => {
    mark('run')
    return job.data.a + job.data.b
  })
  return {
    async call(i) {
      const job = queue.createJob({ a: i, b: 1 })
      const done = new Promise((resolve, reject) => {
        job.on('succeeded', resolve)
        job.on('failed', reject)
      })
      await job.save()
      mark('enqueued')
      return done
    },
    close: () => queue.close(5000),
  }
}

const s = await subject()
const runs = []
for (let i = 0; i < calls; i++) {
  events = []
  t0 = performance.now()
  const v = await s.call(i)
  mark('result')
  if (v !== i + 1) throw new Error(`wrong result ${v}`)
  if (i >= 500) runs.push(events)
}
await s.close()

const shape = r => r.map(e => `${e[0]} ${e[0] === 'read' ? '' : e[2]}`).join(',')
const counts = new Map()
for (const r of runs) counts.set(shape(r), (counts.get(shape(r)) ?? 0) + 1)
const [common, n] = [...counts].sort((a, b) => b[1] - a[1])[0]
const same = runs.filter(r => shape(r) === common)
const median = xs => [...xs].sort((a, b) => a - b)[xs.length >> 1]
console.log(`${library}: ${n} of ${runs.length} calls show this sequence; median µs since the call`)
same[0].forEach(([what, , detail], i) => {
  const us = (median(same.map(r => r[i][1])) * 1000).toFixed(0).padStart(5)
  console.log(`${us}  ${what} ${detail}`)
})
process.exit(0)
