/**
 * Redis URLs and connections used wrongly: a database the server does not have, a password it
 * does not need, a call made as its broker closes. Each gets a coded error or works, and the
 * library prints nothing.
 */
import { expect } from 'chai'
import { BadUrl, BrokerClosed, getBroker } from '../../lib/index.js'
import { redisUrl } from '../helpers/redis-server.js'
import { uniqueQueue } from '../helpers/util.js'

describe('redis: URLs and connections used wrongly', () => {
  let url: string
  before(async () => {
    url = await redisUrl()
  })

  it('a database the server does not have is BadUrl, not database 0', async () => {
    const base = new URL(url)
    const broker = getBroker(`redis://${base.host}/99`, uniqueQueue('db'))
    try {
      const err = await broker.size().catch((e: unknown) => e)
      expect(err).to.be.instanceOf(BadUrl)
      expect((err as BadUrl).message).to.match(/database 99 does not exist/)
    } finally {
      await broker.close()
    }
  })

  it('a password the server does not need: the calls work and nothing is printed', async () => {
    const base = new URL(url)
    const printed: unknown[] = []
    const warn = console.warn
    console.warn = (...args: unknown[]) => printed.push(args)
    const broker = getBroker(`redis://:unneeded@${base.host}${base.pathname}`, uniqueQueue('pw'))
    try {
      expect(await broker.size()).to.equal(0)
    } finally {
      console.warn = warn
      await broker.close()
    }
    expect(printed).to.deep.equal([])
  })

  it('a call made as its broker closes, before the connection is ready: BrokerClosed', async () => {
    for (let i = 0; i < 3; i++) {
      const broker = getBroker(url, uniqueQueue('closing'))
      const call = broker.queue().a.b(1)
      const closing = broker.close()
      const err = await call.then(
        () => undefined,
        (e: unknown) => e,
      )
      await closing
      // It either went through before the close (nothing to see) or was refused as closed.
      if (err !== undefined) expect(err).to.be.instanceOf(BrokerClosed)
    }
  })
})
