/**
 * Managing tasks on memory:// (docs/tasks.md): priorities, metadata, progress the caller watches,
 * cancelling a running task, and finding tasks again. CI runs it; it ends by itself in about a
 * second. Swap the URL for redis://127.0.0.1:6379/0 to run it on Redis.
 */
import {
  getBroker,
  task,
  TaskCancelled,
  TaskSpace,
  WorkerPool,
  type TaskContext,
} from '../lib/index.js'

const order: string[] = []
export const media = new TaskSpace('media', {
  // Reports progress as it goes, and stops when its signal aborts (a cancel, a timeout).
  async transcode(this: TaskContext, file: string, frames: number) {
    for (let done = 1; done <= frames; done++) {
      this.signal.throwIfAborted()
      await new Promise(r => setTimeout(r, 20))
      this.progress({ done, total: frames })
    }
    return `${file}.mp4 (${String(this.metadata.user)})`
  },
  // Runs until it is cancelled.
  async watch(this: TaskContext) {
    await new Promise((_, reject) =>
      this.signal.addEventListener('abort', () => reject(this.signal.reason as Error)),
    )
  },
  note(label: string) {
    order.push(label)
    return label
  },
})

const broker = getBroker('memory://', 'media').expose(media)
const q = broker.queue<typeof media>()

// --- priorities: lower runs first, first in first out within one priority ---
const queued = [
  await task(q.media.note, { priority: 5 })('p5 a'),
  await task(q.media.note, { priority: 0 })('p0 a'),
  await task(q.media.note, { priority: -3 })('p-3 a'),
  await task(q.media.note, { priority: 0 })('p0 b'),
  await task(q.media.note, { priority: -3 })('p-3 b'),
]
const pool = new WorkerPool(broker, { concurrency: 1 })
await pool.start() // the pool starts after the five were enqueued
await Promise.all(queued.map(d => d.result(5_000)))
console.log('ran in order:', order.join(', ')) // p-3 a, p-3 b, p0 a, p0 b, p5 a

// --- progress: any process that holds the Deferred hears it ---
const video = await task(q.media.transcode, { metadata: { user: 'ada' } })('intro', 5)
const seen: unknown[] = []
const stop = video.onProgress(p => seen.push(p)) // in order; fast values may be coalesced
console.log('transcoded:', await video.result(5_000)) // intro.mp4 (ada)
stop()
console.log('progress heard:', JSON.stringify(seen), 'latest:', JSON.stringify(video.progress))
console.log('info().progress:', JSON.stringify((await video.info())?.progress)) // kept after the end

// --- cancel a running task: its signal aborts with TaskCancelled, its waiters get it too ---
const started = new Promise<void>(resolve =>
  pool.on('task:start', e => e.name === 'media.watch' && resolve()),
)
const watcher = await q.media.watch()
await started
console.log('cancel() while it runs:', await watcher.cancel()) // true
const err = await watcher.result(5_000).catch((e: unknown) => e)
console.log('the waiter got:', err instanceof TaskCancelled ? err.code : err) // ERR_WORQ_TASK_CANCELLED
console.log('cancel() again:', await watcher.cancel()) // false: it has ended

// --- finding tasks: by status, name (or a prefix ending in "."), age; one task by id ---
const cancelled = await broker.tasks({ status: 'cancelled', name: 'media.' })
console.log(
  'cancelled media tasks:',
  cancelled.map(t => `${t.name} ${t.id}`),
)
const info = await broker.task(video.id)
console.log('one task:', info?.status, info?.metadata, `attempt ${info?.attempt}/${info?.attempts}`)
const recent = await broker.tasks({ newerThan: 60_000, limit: 3 }) // newest first
console.log('the three newest:', recent.map(t => `${t.name}:${t.status}`).join(' '))

await pool.stop({ timeout: 5_000 })
await broker.close()
