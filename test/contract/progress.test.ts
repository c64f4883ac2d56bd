import { expect } from 'chai'
import { task, taskContext, type TaskContext } from '../../lib/index.js'
import { backends } from '../helpers/backends.js'
import { latch, until, withWorker } from '../helpers/util.js'

for (const backend of backends) {
  describe(`contract: progress and metadata [${backend.name}]`, () => {
    let url: string
    before(async () => {
      url = await backend.url()
    })

    it('progress reaches the caller in order, the latest always arrives, and it stays readable after the end', async () => {
      const w = await withWorker(url, b =>
        b.expose(async function count(this: TaskContext, n: number) {
          for (let i = 1; i <= n; i++) {
            this.progress({ done: i, total: n })
            if (i % 5 === 0) await new Promise(r => setTimeout(r, 20))
          }
          return n
        }),
      )
      try {
        const d = await w.broker.queue().count(40)
        const seen: number[] = []
        const stop = d.onProgress(v => seen.push((v as { done: number }).done))
        expect(await d.result(5000)).to.equal(40)
        await until(() => seen.at(-1) === 40, 2000, 'the last progress value')
        stop()
        // In order (values reported faster than the delivery may be coalesced, never reordered).
        expect([...seen].sort((a, b) => a - b)).to.deep.equal(seen)
        expect(new Set(seen).size).to.equal(seen.length)
        expect(d.progress).to.deep.equal({ done: 40, total: 40 })
        const info = await d.info()
        expect(info!.progress).to.deep.equal({ done: 40, total: 40 })
        expect(info!.status).to.equal('completed')
      } finally {
        await w.close()
      }
    })

    it('a running task’s progress shows in info() while it runs', async () => {
      const reported = latch()
      const release = latch()
      const w = await withWorker(url, b =>
        b.expose(async function step() {
          taskContext().progress(0.5)
          reported.resolve()
          await release.promise
          return 'ok'
        }),
      )
      try {
        const d = await w.broker.queue().step()
        expect(d.progress).to.equal(undefined)
        await reported.promise
        await until(async () => (await d.info())?.progress === 0.5, 2000, 'progress in info()')
        expect((await d.info())!.status).to.equal('processing')
        release.resolve()
        expect(await d.result(5000)).to.equal('ok')
      } finally {
        await w.close()
      }
    })

    it('metadata is stored with the task, shown in TaskInfo and readable in the run, never passed as an argument', async () => {
      const w = await withWorker(url, b =>
        b.expose(function look(this: TaskContext, ...args: unknown[]) {
          return { args, mine: this.metadata, ctx: taskContext().metadata }
        }),
      )
      try {
        const metadata = { user: 'ada', tags: ['a', 'b'], n: 1, ok: true, none: null }
        const d = await task(w.broker.queue().look, { metadata })(7)
        expect(await d.result(5000)).to.deep.equal({ args: [7], mine: metadata, ctx: metadata })
        expect((await d.info())!.metadata).to.deep.equal(metadata)
        const plain = await w.broker.queue().look()
        await plain.result(5000)
        expect((await plain.info())!.metadata).to.deep.equal({})
      } finally {
        await w.close()
      }
    })

    it('metadata that is not a plain JSON object, or over 4 KiB, is an error at the call', async () => {
      const w = await withWorker(url, () => undefined)
      try {
        const q = w.broker.queue()
        const bad: unknown[] = [
          [1],
          'text',
          { d: new Date() },
          { f: () => 1 },
          { x: undefined },
          null,
        ]
        for (const metadata of bad) {
          const err = await Promise.resolve()
            .then(() => task(q.f, { metadata: metadata as Record<string, unknown> })())
            .catch((e: unknown) => e)
          expect(err, JSON.stringify(metadata)).to.be.instanceOf(TypeError)
          expect((err as Error).message).to.match(/`metadata`/)
        }
        const big = { text: 'x'.repeat(4097) }
        const err = await Promise.resolve()
          .then(() => task(q.f, { metadata: big })())
          .catch((e: unknown) => e)
        expect(err).to.be.instanceOf(TypeError)
        expect((err as Error).message).to.match(/4096 bytes/)
        expect(await w.broker.size()).to.equal(0)
      } finally {
        await w.close()
      }
    })
  })
}
