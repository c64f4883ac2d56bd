/**
 * The HTTP API's routes, on every backend, through a plain Node server: what each answers, and the
 * errors each gives for a request that cannot be served.
 */
import { expect } from 'chai'
import { backends } from '../helpers/backends.js'
import { serveApi, type ApiFixture } from '../helpers/http-fixture.js'
import { until } from '../helpers/util.js'

for (const backend of backends) {
  describe(`http: the API's routes [${backend.name}]`, function () {
    let url: string
    let api: ApiFixture
    let queue: string
    before(async () => {
      url = await backend.url()
    })
    beforeEach(async () => {
      api = await serveApi(url)
      queue = api.broker.name
    })
    afterEach(async () => {
      await api.close()
    })

    /**
     * Submits a call while the queue is paused (so that the 201 shows it enqueued, with its
     * arguments: a completed task keeps no call), then lets it run and waits for it to end.
     */
    async function run(name: string, args: unknown[], options?: object) {
      await api.broker.pause()
      const r = await api.server.call('POST', '/api/tasks', { json: { name, args, options } })
      await api.broker.resume()
      expect(r.status, r.text).to.equal(201)
      await until(
        async () => {
          const t = await api.server.call('GET', r.headers.location!)
          return !['pending', 'enqueued', 'processing'].includes(t.json.status)
        },
        5000,
        `${name} to end`,
      )
      return { created: r.json, done: (await api.server.call('GET', r.headers.location!)).json }
    }

    it('GET /api/health and /api/config', async () => {
      const h = await api.server.call('GET', '/api/health')
      expect(h.status).to.equal(200)
      expect(h.json).to.include({ ok: true })
      expect(h.json.backend).to.match(/^(memory|redis|redis-cluster|redis-sentinel|postgres):\/\//)
      expect(h.json.latencyMs).to.be.a('number').within(0, 2000)
      const c = await api.server.call('GET', '/api/config')
      expect(c.json).to.deep.include({ queues: [queue], readOnly: false })
      expect(c.json.version).to.match(/^\d+\.\d+\.\d+/)
    })

    it('POST /api/tasks enqueues (201, Location), the worker runs it, GET reads it with its arguments and value', async () => {
      await api.broker.pause()
      const r = await api.server.call('POST', '/api/tasks', {
        json: { name: 't.add', args: [2, 40], options: { priority: 3, metadata: { by: 'test' } } },
      })
      await api.broker.resume()
      expect(r.status, r.text).to.equal(201)
      expect(r.json).to.include({ name: 't.add', queue, priority: 3, status: 'enqueued' })
      expect(r.json.args).to.deep.equal([2, 40])
      expect(r.headers.location).to.equal(
        `/api/tasks/${encodeURIComponent(r.json.id)}?queue=${encodeURIComponent(queue)}`,
      )
      const { done } = await run('t.add', [2, 40])
      expect(done).to.include({ status: 'completed', value: 42, attempt: 1 })
      expect(done.createdAt).to.match(/^\d{4}-\d\d-\d\dT.*Z$/)
      expect(done.startedAt).to.match(/Z$/)
      expect(done.finishedAt).to.match(/Z$/)
      const first = await api.server.call('GET', r.headers.location!)
      expect(first.json.metadata).to.deep.equal({ by: 'test' })
    })

    it('values that JSON cannot carry travel tagged both ways ({ $superjson: { json, meta } })', async () => {
      const when = { $superjson: { json: '2026-01-02T03:04:05.000Z', meta: { values: ['Date'] } } }
      const { created, done } = await run('t.types', [when])
      expect(created.args).to.have.length(1)
      expect(created.args[0].$superjson.json).to.equal(when.$superjson.json)
      expect(created.args[0].$superjson.meta.values).to.deep.equal(['Date'])
      expect(done.value.$superjson.json).to.deep.equal({
        kind: '[object Date]',
        when: '1970-01-01T00:00:00.000Z',
      })
      const { done: echoed } = await run('t.echo', [
        { $superjson: { json: '12', meta: { values: ['bigint'] } } },
        'x',
      ])
      expect(echoed.value.$superjson.json).to.deep.equal(['12', 'x'])
      expect(echoed.value.$superjson.meta.values).to.deep.equal({ '0': ['bigint'] })
      const bad = await api.server.call('POST', '/api/tasks', {
        json: { name: 't.echo', args: [{ $superjson: { json: 1, extra: 2 } }] },
      })
      expect(bad.status).to.equal(400)
      expect(bad.json.error.message).to.match(/args\[0\].*tagged value/)
    })

    it('GET /api/tasks lists with status, name, limit and offset; bad filters are 400s naming them', async () => {
      await run('t.add', [1, 1])
      await run('t.fails', ['no'])
      await run('t.add', [2, 2])
      const all = await api.server.call('GET', '/api/tasks')
      expect(all.json.map((t: { name: string }) => t.name)).to.deep.equal([
        't.add',
        't.fails',
        't.add',
      ])
      const failed = await api.server.call('GET', '/api/tasks?status=failed')
      expect(failed.json).to.have.length(1)
      expect(failed.json[0].error).to.include({ name: 'RangeError', message: 'no' })
      expect(failed.json[0].error.stack).to.match(/RangeError: no/)
      const several = await api.server.call(
        'GET',
        '/api/tasks?status=failed,completed&name=t.add&limit=1&offset=1',
      )
      expect(several.json.map((t: { value: unknown }) => t.value)).to.deep.equal([2])
      const prefix = await api.server.call(`GET`, `/api/tasks?name=t.&olderThan=0&queue=${queue}`)
      expect(prefix.json).to.have.length(3)
      for (const [query, named] of [
        ['status=done', /status/],
        ['limit=0', /limit/],
        ['limit=1001', /limit/],
        ['offset=-1', /offset/],
        ['name=a..b', /name/],
        ['olderThan=yesterday', /olderThan/],
        // Dates that do not exist (new Date() rolls 2026-02-30 over to March 2).
        ['olderThan=2026-02-30', /olderThan.*2026-02-30/],
        ['olderThan=2025-02-29', /olderThan/],
        ['newerThan=2026-04-31', /newerThan/],
        ['newerThan=2026-13-01', /newerThan/],
        ['olderThan=2026-01-31T24:00:00Z', /olderThan/],
        ['olderThan=2026-01-31T12:60Z', /olderThan/],
        ['olderThan=2026-01-31T12:00:00%2B24:00', /olderThan/],
        ['colour=red', /colour/],
        ['limit=1&limit=2', /twice/],
        ['name=%E0%A4%A', /UTF-8/],
        ['name=a%00b', /control/],
      ] as const) {
        const r = await api.server.call('GET', `/api/tasks?${query}`)
        expect(r.status, query).to.equal(400)
        expect(r.json.error.message, query).to.match(named)
      }
      // An empty parameter is one left out (as a form sends an empty field).
      const blank = await api.server.call(
        'GET',
        '/api/tasks?queue=&status=&name=&limit=&offset=&olderThan=&newerThan=',
      )
      expect(blank.status).to.equal(200)
      expect(blank.json).to.have.length(3)
      // Wherever the empty one comes.
      for (const query of ['limit=&limit=2', 'limit=2&limit=']) {
        const r = await api.server.call('GET', `/api/tasks?${query}`)
        expect(r.status, `${query}: ${r.text}`).to.equal(200)
        expect(r.json, query).to.have.length(2)
      }
      // Dates that exist, with or without a time, seconds, a fraction or a zone.
      for (const date of [
        '2024-02-29',
        '2026-01-31T12:00',
        '2026-01-31T23:59:59.999Z',
        '2026-01-31T12:00:00-05:30',
      ]) {
        const r = await api.server.call('GET', `/api/tasks?olderThan=${encodeURIComponent(date)}`)
        expect(r.status, `${date}: ${r.text}`).to.equal(200)
      }
      const other = await api.server.call('GET', '/api/tasks?queue=elsewhere')
      expect(other.status).to.equal(404)
      expect(other.json.error.code).to.equal('ERR_WORQ_HTTP_NO_SUCH_QUEUE')
    })

    it('GET /api/tasks/:id: 404 for an unknown id, 400 for a bad one; a traversal in an id is only an id', async () => {
      const unknown = await api.server.call('GET', '/api/tasks/no-such-task')
      expect(unknown.status).to.equal(404)
      expect(unknown.json.error.code).to.equal('ERR_WORQ_HTTP_NO_SUCH_TASK')
      const traversal = await api.server.call('GET', '/api/tasks/..%2F..%2Fetc%2Fpasswd')
      expect(traversal.status).to.equal(404)
      const dots = await api.server.call('GET', '/api/tasks/../../package.json')
      expect(dots.status).to.equal(404)
      expect(dots.json.error.code).to.equal('ERR_WORQ_HTTP_NOT_FOUND')
      const control = await api.server.call('GET', '/api/tasks/a%01b')
      expect(control.status).to.equal(400)
      expect(control.json.error.code).to.equal('ERR_WORQ_HTTP_BAD_ID')
      const long = await api.server.call('GET', `/api/tasks/${'x'.repeat(257)}`)
      expect(long.status).to.equal(400)
      const badPercent = await api.server.call('GET', '/api/tasks/%E0%A4%A')
      expect(badPercent.status).to.equal(400)
      expect(badPercent.json.error.code).to.equal('ERR_WORQ_HTTP_BAD_PATH')
    })

    it('DELETE /api/tasks/:id cancels a running task; POST …/retry enqueues it again with its arguments (201)', async () => {
      const r = await api.server.call('POST', '/api/tasks', { json: { name: 't.hold', args: [3] } })
      const id = r.json.id as string
      await until(async () => (await api.broker.task(id))?.status === 'processing', 5000, 'the run')
      const cancel = await api.server.call('DELETE', `/api/tasks/${id}`)
      expect(cancel.json).to.deep.equal({ cancelled: true })
      expect((await api.server.call('DELETE', `/api/tasks/${id}`)).json).to.deep.equal({
        cancelled: false,
      })
      const cancelled = await api.server.call('GET', `/api/tasks/${id}`)
      expect(cancelled.json.status).to.equal('cancelled')
      expect(cancelled.json.error.name).to.equal('TaskCancelled')
      api.release()
      await api.broker.pause()
      const again = await api.server.call('POST', `/api/tasks/${id}/retry`)
      await api.broker.resume()
      expect(again.status, again.text).to.equal(201)
      expect(again.json.id).to.not.equal(id)
      expect(again.json).to.include({ name: 't.hold' })
      expect(again.json.args).to.deep.equal([3])
      expect(again.headers.location).to.contain(encodeURIComponent(again.json.id))
      await until(
        async () => (await api.broker.task(again.json.id))?.status === 'completed',
        5000,
        'the retry',
      )
      const notRetryable = await api.server.call('POST', `/api/tasks/${again.json.id}/retry`)
      expect(notRetryable.status).to.equal(409)
      expect(notRetryable.json.error.code).to.equal('ERR_WORQ_NOT_RETRYABLE')
      const unknown = await api.server.call('POST', '/api/tasks/nothing/retry')
      expect(unknown.status).to.equal(404)
    })

    it('GET /api/queues, /api/workers, /api/types, /api/schedules, /api/limits, /api/metrics', async () => {
      await api.broker.limit('t.add', { concurrency: 2 })
      await api.broker.schedule(
        'nightly',
        { cron: '0 3 * * *', tz: 'UTC' },
        api.broker.queue().t.add,
        1,
        2,
      )
      await run('t.add', [1, 2])
      await api.broker.pause()
      await api.broker.queue().t.add(5, 5)
      const queues = await api.server.call('GET', '/api/queues')
      expect(queues.json).to.deep.equal([
        {
          name: queue,
          waiting: 1,
          delayed: 0,
          pending: 0,
          processing: 0,
          paused: true,
          workers: 1,
          oldestWaitingMs: queues.json[0].oldestWaitingMs,
        },
      ])
      const workers = await api.server.call('GET', '/api/workers')
      expect(workers.json).to.have.length(1)
      expect(workers.json[0]).to.include({
        queue,
        id: api.pool.id,
        pid: process.pid,
        concurrency: 4,
      })
      expect(workers.json[0].names).to.include('t.add')
      expect(workers.json[0].seenAt).to.match(/Z$/)
      const types = await api.server.call('GET', `/api/types?queue=${queue}`)
      expect(types.json.map((t: { name: string }) => t.name)).to.deep.equal([
        't.add',
        't.echo',
        't.fails',
        't.hold',
        't.types',
      ])
      const schedules = await api.server.call('GET', '/api/schedules')
      expect(schedules.json).to.have.length(1)
      expect(schedules.json[0]).to.include({
        id: 'nightly',
        name: 't.add',
        cron: '0 3 * * *',
        tz: 'UTC',
        runs: 0,
      })
      expect(schedules.json[0].next).to.match(/T03:00:00\.000Z$/)
      const limits = await api.server.call('GET', '/api/limits')
      expect(limits.json).to.deep.equal({ 't.add': { concurrency: 2 } })
      const metrics = await api.server.call('GET', '/api/metrics?minutes=5')
      expect(metrics.json.queue).to.equal(queue)
      expect(metrics.json.totals.completed).to.equal(1)
      expect(metrics.json.minutes.at(-1).time).to.match(/:00\.000Z$/)
      expect((await api.server.call('GET', '/api/metrics?minutes=0')).status).to.equal(400)
      await api.broker.unschedule('nightly')
    })

    it('POST /api/queues/:name/pause and /resume; DELETE /api/queues/:name/tasks purges only with ?confirm=<name>', async () => {
      const paused = await api.server.call('POST', `/api/queues/${queue}/pause`)
      expect(paused.json).to.deep.equal({ paused: true })
      expect(await api.broker.isPaused()).to.equal(true)
      const q = api.broker.queue()
      for (let i = 0; i < 3; i++) await q.t.add(i, i)
      for (const confirm of ['', '?confirm=', `?confirm=${queue}x`]) {
        const refused = await api.server.call('DELETE', `/api/queues/${queue}/tasks${confirm}`)
        expect(refused.status, confirm).to.equal(400)
        expect(refused.json.error.code).to.equal('ERR_WORQ_HTTP_CONFIRM')
        expect(refused.json.error.message).to.contain(`?confirm=${queue}`)
      }
      expect(await api.broker.size()).to.equal(3)
      const purged = await api.server.call('DELETE', `/api/queues/${queue}/tasks?confirm=${queue}`)
      expect(purged.json).to.deep.equal({ purged: 3 })
      expect(await api.broker.size()).to.equal(0)
      const resumed = await api.server.call('POST', `/api/queues/${queue}/resume`)
      expect(resumed.json).to.deep.equal({ paused: false })
      expect(await api.broker.isPaused()).to.equal(false)
      const other = await api.server.call('POST', '/api/queues/elsewhere/pause')
      expect(other.status).to.equal(404)
    })

    it('GET /metrics is Prometheus text; unknown paths 404 and wrong methods 405 with Allow', async () => {
      await run('t.add', [1, 2])
      const m = await api.server.call('GET', '/metrics')
      expect(m.headers['content-type']).to.match(/^text\/plain; version=0\.0\.4/)
      expect(m.text).to.contain(`worq_tasks_total{queue="${queue}",status="completed"} 1`)
      const missing = await api.server.call('GET', '/api/nothing')
      expect(missing.status).to.equal(404)
      expect(missing.json.error.code).to.equal('ERR_WORQ_HTTP_NOT_FOUND')
      const wrong = await api.server.call('PUT', '/api/tasks')
      expect(wrong.status).to.equal(405)
      expect(wrong.headers.allow).to.equal('GET, HEAD, POST')
      expect((await api.server.call('OPTIONS', '/api/tasks')).status).to.equal(405)
    })
  })
}
