/**
 * PostgreSQL's coded errors as the API answers them, against private databases: a statement
 * cancelled by `statement_timeout`, a schema newer than this worq, a role that may not create the
 * schema. Each is a 503 with the library's own code and message (never a bare 500), handed to
 * `onError`.
 */
import { expect } from 'chai'
import { randomBytes } from 'node:crypto'
import pg from 'pg'
import { getBroker } from '../../lib/index.js'
import type { Answer } from '../helpers/http.js'
import { expectCoded, served } from '../helpers/http-coded.js'
import { freshDatabase } from '../helpers/postgres.js'

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
      expectCoded(answer, 503, 'ERR_WORQ_STATEMENT_TIMEOUT', api.errors)
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
        expectCoded(answer, 503, 'ERR_WORQ_SCHEMA_TOO_NEW', api.errors)
        expect(answer.json.error.message, path).to.match(/newer than this worq knows/)
      }
      expectCoded(await api.submit(), 503, 'ERR_WORQ_SCHEMA_TOO_NEW', api.errors)
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
      expectCoded(answer, 503, 'ERR_WORQ_MIGRATION_DENIED', api.errors)
      expect(answer.json.error.message).to.match(/worq migrate <url>/)
      expectCoded(await api.submit(), 503, 'ERR_WORQ_MIGRATION_DENIED', api.errors)
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
