/**
 * prometheusMetrics compared backend URLs as written: one queue on `redis://h:p` and on
 * `redis://h:p/0` (one server, one database) was refused as a queue on two backends. Spellings of
 * one backend now count as one, against a real Redis and a real PostgreSQL; a different database
 * is still refused.
 */
import { expect } from 'chai'
import { getBroker, type Broker } from '../../lib/index.js'
import { prometheusMetrics } from '../../lib/metrics/index.js'
import { postgresUrl } from '../helpers/postgres.js'
import { redisUrl } from '../helpers/redis-server.js'
import { uniqueQueue } from '../helpers/util.js'

/** The URL's parts, to spell it otherwise. */
function parts(url: string): { host: string; port: string; path: string; user: string } {
  const u = new URL(url)
  return { host: u.hostname, port: u.port, path: u.pathname, user: u.username }
}

describe('metrics: spellings of one backend URL are one backend', () => {
  const opened: Broker[] = []
  const open = (url: string, queue: string) => {
    const b = getBroker(url, queue)
    opened.push(b)
    return b
  }
  afterEach(async () => {
    for (const b of opened.splice(0)) {
      await b.purge().catch(() => undefined)
      await b.close()
    }
  })

  /** The text without the one sample that moves with the clock (the oldest waiting task's age). */
  const steady = (text: string) =>
    text
      .split('\n')
      .filter(l => !l.startsWith('worq_oldest_waiting_seconds{'))
      .join('\n')

  /** Renders `spellings` of one queue's backend together: once, as the first alone renders it. */
  async function renderedOnce(spellings: string[]): Promise<void> {
    const queue = uniqueQueue('prom-url')
    const [first, ...rest] = spellings.map(url => open(url, queue))
    first!.expose(function noop() {})
    await first!.queue().noop()
    const alone = steady(await prometheusMetrics(first!))
    expect(alone).to.include(`worq_tasks{queue="${queue}",state="waiting"} 1`)
    for (const other of rest)
      expect(steady(await prometheusMetrics([first!, other])), other.url).to.equal(alone)
    expect(steady(await prometheusMetrics([...rest, first!]))).to.equal(alone)
  }

  it('redis://h:p and redis://h:p/0 were two backends: one now', async () => {
    const { host, port } = parts(await redisUrl())
    await renderedOnce([
      `redis://${host}:${port}`,
      `redis://${host}:${port}/0`,
      `REDIS://${host}:${port}/`,
      `redis://default@${host}:${port}/0`,
    ])
  })

  it('postgres:// and postgresql://, with the default port and other connection options, are one backend', async () => {
    const url = await postgresUrl()
    const { host, port, path, user } = parts(url)
    expect(port === '' || port === '5432', 'the test database is on the default port').to.equal(
      true,
    )
    await renderedOnce([
      url,
      `postgresql://${user}@${host}${path}`,
      `postgres://${user}:ignored@${host}:5432${path}?schema=worq&pool=2&application_name=prom`,
    ])
  })

  it('another Redis database is another backend: still a TypeError', async () => {
    const { host, port } = parts(await redisUrl())
    const queue = uniqueQueue('prom-url')
    const a = open(`redis://${host}:${port}`, queue)
    const b = open(`redis://${host}:${port}/1`, queue)
    const err = await prometheusMetrics([a, b]).catch((e: unknown) => e)
    expect(err).to.be.instanceOf(TypeError)
    expect((err as Error).message).to.include(`${host}:${port}/1`)
  })
})
