/**
 * `GET /api/events`: Server-Sent Events of the queue's event stream, resumable with
 * Last-Event-ID, with heartbeats; one stream per client, closed when the client goes.
 */
import { expect } from 'chai'
import { redisUrl } from '../helpers/redis-server.js'
import { serveApi, type ApiFixture } from '../helpers/http-fixture.js'
import { open, type Sse } from '../helpers/sse.js'

describe('http: GET /api/events (Server-Sent Events)', function () {
  let api: ApiFixture
  before(async () => {
    api = await serveApi(await redisUrl(), { heartbeatMs: 50, maxEventStreams: 2 })
  })
  after(() => api.close())

  it("streams the queue's events with ids; Last-Event-ID resumes after one", async () => {
    const stream = await open(api.server.base, '/api/events')
    expect(stream.res.status).to.equal(200)
    expect(stream.res.headers.get('content-type')).to.equal('text/event-stream; charset=utf-8')
    await stream.next(e => e.comment === 'connected')
    const d = await api.broker.queue().t.hold(2)
    const enqueued = await stream.next(e => e.data?.type === 'enqueued' && e.data.id === d.id)
    const progress = await stream.next(e => e.data?.type === 'progress' && e.data.id === d.id)
    expect(progress.data.progress).to.include({ total: 2 })
    api.release()
    const completed = await stream.next(e => e.data?.type === 'completed' && e.data.id === d.id)
    expect(completed.data).to.include({ name: 't.hold', queue: api.broker.name, attempt: 1 })
    expect(completed.data.time).to.match(/Z$/)
    expect(enqueued.id).to.equal(enqueued.data.eventId)
    expect(Number(completed.id)).to.be.greaterThan(Number(enqueued.id))
    await stream.close()

    const resumed = await open(api.server.base, '/api/events', { 'Last-Event-ID': enqueued.id! })
    const again = await resumed.next(e => e.data?.type === 'completed' && e.data.id === d.id)
    expect(again.id).to.equal(completed.id)
    const types = resumed.seen.filter(e => e.data?.id === d.id).map(e => e.data.type)
    expect(types[0]).to.equal('started')
    expect(types).to.not.include('enqueued')
    await resumed.close()
  })

  it('sends a heartbeat comment every heartbeatMs', async () => {
    const stream = await open(api.server.base, `/api/events?queue=${api.broker.name}`)
    await stream.next(e => e.comment === 'ping')
    await stream.close()
  })

  it('holds at most maxEventStreams; a client that goes frees its stream', async () => {
    const one = await open(api.server.base, '/api/events')
    const two = await open(api.server.base, '/api/events')
    await one.next(e => e.comment === 'connected')
    await two.next(e => e.comment === 'connected')
    const three = await fetch(`${api.server.base}/api/events`)
    expect(three.status).to.equal(503)
    expect(((await three.json()) as any).error.code).to.equal('ERR_WORQ_HTTP_BUSY')
    await one.close()
    // The server notices the client went (its socket closed) and frees the slot.
    let status = 503
    for (let i = 0; i < 100 && status === 503; i++) {
      const r = await fetch(`${api.server.base}/api/events`, { signal: AbortSignal.timeout(2000) })
      status = r.status
      await r.body?.cancel()
      if (status === 503) await new Promise(resolve => setImmediate(resolve))
    }
    expect(status).to.equal(200)
    await two.close()
  })

  it('a Last-Event-ID the server never sent is a 400', async () => {
    for (const id of ['abc', 'other=5', '1=2=3']) {
      const r = await fetch(`${api.server.base}/api/events`, { headers: { 'Last-Event-ID': id } })
      expect(r.status, id).to.equal(400)
      expect(((await r.json()) as any).error.code).to.equal('ERR_WORQ_HTTP_BAD_EVENT_ID')
    }
  })

  it("with several queues, one stream carries all of them and its ids hold every queue's position", async () => {
    const multi = await serveApi(await redisUrl(), {}, { queues: 2 })
    try {
      const stream = await open(multi.server.base, '/api/events')
      await stream.next(e => e.comment === 'connected')
      const [a, b] = multi.brokers
      await b!.pause()
      await a!.queue().t.add(1, 2)
      const paused = await stream.next(e => e.data?.type === 'paused')
      expect(paused.data.queue).to.equal(b!.name)
      const done = await stream.next(e => e.data?.type === 'completed')
      expect(done.data.queue).to.equal(a!.name)
      // The latest id holds each queue's latest eventId (the two queues' events interleave).
      const latest = (q: string) =>
        stream.seen.filter(e => e.data?.queue === q).at(-1)!.data.eventId
      const positions = new URLSearchParams(stream.seen.filter(e => e.id).at(-1)!.id)
      expect(positions.get(a!.name)).to.equal(latest(a!.name))
      expect(positions.get(b!.name)).to.equal(latest(b!.name))
      await stream.close()
      // Resuming after the first event brings every later one of both queues, and nothing else.
      const events = stream.seen.filter(e => e.data)
      const key = (e: Sse) => `${e.data.queue}#${e.data.eventId}`
      const resumed = await open(multi.server.base, '/api/events', {
        'Last-Event-ID': events[0]!.id!,
      })
      const later = events.slice(1).map(key).sort()
      await resumed.next(() => resumed.seen.filter(e => e.data).length >= later.length)
      expect(
        resumed.seen
          .filter(e => e.data)
          .map(key)
          .sort(),
      ).to.deep.equal(later)
      await resumed.close()
      await b!.resume()
    } finally {
      await multi.close()
    }
  })
})
