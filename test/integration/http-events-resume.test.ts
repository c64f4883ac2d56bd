/**
 * `GET /api/events` with a `Last-Event-ID` the queue's log does not hold, on every backend: past
 * its newest event (the log was removed and begun again: a restarted memory:// server, a Redis
 * queue's keys deleted; or another server's id) it is a `gap`, then everything the log keeps,
 * then what happens next; a malformed one is a 400 with a code. The gap's `id:` resumed at the
 * unknown position, so every reconnect after it (a proxy closing the stream, say) was another
 * gap and another replay of the whole log; it now resumes after the gap.
 */
import { expect } from 'chai'
import { backends } from '../helpers/backends.js'
import { serveApi, type ApiFixture } from '../helpers/http-fixture.js'
import { open } from '../helpers/sse.js'

for (const backend of backends)
  describe(`http: Last-Event-ID past the head, or malformed [${backend.name}]`, () => {
    let api: ApiFixture
    beforeEach(async () => {
      api = await serveApi(await backend.url(), { heartbeatMs: 60_000 })
    })
    afterEach(() => api.close())

    /** Runs one task to its end: its enqueued, started and completed events are in the log. */
    async function oneTask(): Promise<string> {
      const d = await api.broker.queue().t.add(1, 2)
      expect(await d.result(5_000)).to.equal(3)
      return d.id
    }

    for (const past of ['1000000', '99999999999999999999'])
      it(`an id past the newest event (${past}): a gap, the kept events, then live ones; reconnecting after the gap is no second gap`, async () => {
        const first = await oneTask()
        const stream = await open(api.server.base, '/api/events', { 'Last-Event-ID': past })
        expect(stream.res.status).to.equal(200)
        const gap = await stream.next(e => e.data?.type === 'gap')
        expect(gap.data.eventId).to.equal(past)
        const done = await stream.next(e => e.data?.type === 'completed' && e.data.id === first)
        // Everything the log keeps, in order, after the gap.
        const kept = stream.seen.filter(e => e.data && e.data.type !== 'gap')
        expect(kept.map(e => e.data.type)).to.deep.equal(['enqueued', 'started', 'completed'])
        expect(kept.map(e => e.id)).to.deep.equal(kept.map(e => e.data.eventId))
        expect(stream.seen.indexOf(gap)).to.be.lessThan(stream.seen.indexOf(kept[0]!))
        // What happens next follows on the same stream.
        const second = await oneTask()
        await stream.next(e => e.data?.type === 'completed' && e.data.id === second)
        await stream.close()
        // The gap's id resumes after the gap (a client that lost the stream right after it).
        expect(gap.id).to.not.equal(past)
        const again = await open(api.server.base, '/api/events', { 'Last-Event-ID': gap.id! })
        await again.next(e => e.comment === 'connected')
        const third = await oneTask()
        await again.next(e => e.data?.type === 'completed' && e.data.id === third)
        expect(again.seen.filter(e => e.data?.type === 'gap')).to.deep.equal([])
        await again.close()
        expect(Number(done.id)).to.be.lessThan(Number(past))
      })

    it('an id past the head of a queue with no events yet: a gap, then live events; no gap on reconnect', async () => {
      const stream = await open(api.server.base, '/api/events', { 'Last-Event-ID': '5' })
      const gap = await stream.next(e => e.data?.type === 'gap')
      const id = await oneTask()
      await stream.next(e => e.data?.type === 'completed' && e.data.id === id)
      await stream.close()
      const again = await open(api.server.base, '/api/events', { 'Last-Event-ID': gap.id! })
      await again.next(e => e.comment === 'connected')
      const next = await oneTask()
      await again.next(e => e.data?.type === 'completed' && e.data.id === next)
      expect(again.seen.filter(e => e.data?.type === 'gap')).to.deep.equal([])
      await again.close()
    })

    it('a malformed id is a 400 ERR_WORQ_HTTP_BAD_EVENT_ID, for GET and HEAD, and opens no stream', async () => {
      await oneTask()
      const bad = [
        'abc',
        '-1',
        '+1',
        '1.5',
        '1e3',
        '0x10',
        '123456789012345678901', // 21 digits: no id this server sends
        `${api.broker.name}=x`,
        'other=5',
        `${api.broker.name}=1=2`,
      ]
      for (const id of bad)
        for (const method of ['GET', 'HEAD']) {
          const r = await api.server.call(method, '/api/events', {
            headers: { 'Last-Event-ID': id },
          })
          expect(r.status, `${method} ${id}`).to.equal(400)
          if (method === 'GET') expect(r.json.error.code, id).to.equal('ERR_WORQ_HTTP_BAD_EVENT_ID')
        }
      // No slot was taken: a stream still opens at once.
      const ok = await open(api.server.base, '/api/events', { 'Last-Event-ID': '0' })
      await ok.next(e => e.data?.type === 'completed')
      await ok.close()
    })
  })
