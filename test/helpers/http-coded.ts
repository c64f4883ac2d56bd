/**
 * The HTTP API serving one broker, for the tests of how the library's coded errors are answered
 * (http-errors.test.ts on Redis, http-errors-postgres.test.ts on PostgreSQL).
 */
import { expect } from 'chai'
import { getBroker, type Broker } from '../../lib/index.js'
import { worqHttp } from '../../lib/http/index.js'
import { serve, type Answer, type TestServer } from './http.js'
import { uniqueQueue } from './util.js'

/** A broker on `url` served with `submit: ['t.add']`, the errors handed to onError, and a closer. */
export async function served(url: string, options: Parameters<typeof getBroker>[2] = {}) {
  const broker: Broker = getBroker(url, uniqueQueue('http-err'), options)
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
      await broker.purge().catch(() => undefined)
      await broker.close()
    },
  }
}

/** Expects `answer` to be `status` with the library's `code`, and onError to have had it. */
export function expectCoded(answer: Answer, status: number, code: string, errors: unknown[]): void {
  expect(answer.status, answer.text).to.equal(status)
  expect(answer.json.error.code).to.equal(code)
  expect(answer.json.error.message)
    .to.be.a('string')
    .and.not.match(/failed to answer/)
  expect(errors.map(e => (e as { code?: string }).code)).to.include(code)
}
