/**
 * PostgreSQL's coded errors as the API answers them, against private databases: a statement
 * cancelled by `statement_timeout`, a schema newer than this worq, a role that may not create the
 * schema. Each is a 503 with the library's own code and message (never a bare 500), handed to
 * `onError`.
 */
import { expect } from 'chai'
import { randomBytes } from 'node:crypto'
import pg from 'pg'
import { getBroker, type Broker } from '../../lib/index.js'
import { worqHttp } from '../../lib/http/index.js'
import { serve, type Answer, type TestServer } from '../helpers/http.js'
import { freshDatabase } from '../helpers/postgres.js'
import { uniqueQueue } from '../helpers/util.js'

/** A broker on `url` served with `submit: ['t.add']`, the errors handed to onError, and a closer. */
async function served(url: string) {
  const broker: Broker = getBroker(url, uniqueQueue('http-err'))
  const errors: unknown[] = []
  const handler = worqHttp(broker, { submit: ['t.add'], onError: err => errors.push(err) })
  const server: TestServer = await serve(handler)
  return {
    broker,
    errors,
    server,
    submit: () => server.call('POST', '/api/tasks', { json: { name: 't.add', args: [1, 2] } }),
    async close() {
      await handler.close()
      await server.close()
      await broker.close()
    },
  }
}

/** Expects `answer` to be a 503 with the library's `code`, and onError to have had it. */
function expect503(answer: Answer, code: string, errors: unknown[]): void {
  expect(answer.status, answer.text).to.equal(503)
  expect(answer.json.error.code).to.equal(code)
  expect(errors.map(e => (e as { code?: string }).code)).to.include(code)
}

describe('http: PostgreSQL’s coded errors', function () {
  this.timeout(60_000)
  let db: string
  let admin: pg.Client
  before(async () => {
    db = await freshDatabase()
    const boot = getBroker(db, 'boot')
    await boot.size() // the schema, made before anything below changes the database
    await boot.close()
    admin = new pg.Client({ connectionString: db })
    await admin.connect()
  })
  after(async () => {
    await admin?.end()
  })

  it('a statement cancelled by statement_timeout: POST /api/tasks answers 503 ERR_WORQ_STATEMENT_TIMEOUT, and nothing was enqueued', async () => {
    const name = new URL(db).pathname.slice(1)
    await admin.query(`ALTER DATABASE ${name} SET statement_timeout = '300ms'`)
    // Connections made from now on have the timeout.
    const api = await served(`${db}?application_name=worq-http-timeout`)
    try {
      await api.broker.size()
      await admin.query('BEGIN')
      let answer: Answer
      try {
        await admin.query('LOCK TABLE worq.tasks IN SHARE MODE')
        answer = await api.submit()
      } finally {
        await admin.query('ROLLBACK')
      }
      expect503(answer, 'ERR_WORQ_STATEMENT_TIMEOUT', api.errors)
      expect(answer.json.error.message).to.match(/statement_timeout.*can be sent again/)
      expect(await api.broker.size()).to.equal(0)
    } finally {
      await admin.query(`ALTER DATABASE ${name} RESET statement_timeout`)
      await api.close()
    }
  })

  it('a schema newer than this worq: routes answer 503 ERR_WORQ_SCHEMA_TOO_NEW', async () => {
    const newer = await freshDatabase()
    const c = new pg.Client({ connectionString: newer })
    await c.connect()
    const boot = getBroker(newer, 'boot')
    await boot.size()
    await boot.close()
    await c.query('INSERT INTO worq.migrations (version) VALUES (9999)')
    await c.end()
    const api = await served(newer)
    try {
      for (const path of ['/api/queues', '/api/tasks']) {
        const answer = await api.server.call('GET', path)
        expect503(answer, 'ERR_WORQ_SCHEMA_TOO_NEW', api.errors)
        expect(answer.json.error.message, path).to.match(/newer than this worq knows/)
      }
      expect503(await api.submit(), 'ERR_WORQ_SCHEMA_TOO_NEW', api.errors)
    } finally {
      await api.close()
    }
  })

  it('a role that may not create the schema: routes answer 503 ERR_WORQ_MIGRATION_DENIED', async () => {
    const bare = await freshDatabase()
    const role = `worq_http_${randomBytes(4).toString('hex')}`
    await admin.query(`CREATE ROLE ${role} LOGIN`)
    const u = new URL(bare)
    u.username = role
    const api = await served(u.toString())
    try {
      const answer = await api.server.call('GET', '/api/queues')
      expect503(answer, 'ERR_WORQ_MIGRATION_DENIED', api.errors)
      expect(answer.json.error.message).to.match(/worq migrate <url>/)
      expect503(await api.submit(), 'ERR_WORQ_MIGRATION_DENIED', api.errors)
    } finally {
      await api.close()
      await admin.query(
        'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1',
        [role],
      )
      await admin.query(`DROP ROLE IF EXISTS ${role}`)
    }
  })
})
