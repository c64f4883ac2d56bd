/**
 * A client that aborts its upload mid-body (Content-Length 100, part of the body, then close) did
 * so itself: nothing is handed to `onError` (`worq dashboard` printed a stack for each, so any
 * client could flood its log), nothing is enqueued, and the server goes on answering.
 */
import { expect } from 'chai'
import { createServer, type IncomingMessage, type Server } from 'node:http'
import { connect, type AddressInfo } from 'node:net'
import { getBroker, type Broker } from '../../lib/index.js'
import { worqHttp, type WorqHttpHandler } from '../../lib/http/index.js'
import { redisUrl } from '../helpers/redis-server.js'
import { until, uniqueQueue } from '../helpers/util.js'

describe('http: a client that aborts its upload', function () {
  let broker: Broker
  let handler: WorqHttpHandler
  let server: Server
  let port: number
  const errors: unknown[] = []
  /** Resolves for each request once it closed and everything it set off has run. */
  const settled: Array<Promise<void>> = []

  before(async () => {
    broker = getBroker(await redisUrl(), uniqueQueue('http-abort'))
    handler = worqHttp(broker, { submit: ['t.add'], onError: err => errors.push(err) })
    server = createServer((req: IncomingMessage, res) => {
      handler(req, res)
      // After the request's close (its 'error' comes before), one turn of the event loop: the
      // handler's promise chain has run by then.
      settled.push(new Promise(resolve => req.once('close', () => setImmediate(resolve))))
    })
    await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
    port = (server.address() as AddressInfo).port
  })

  after(async () => {
    await handler.close()
    server.closeAllConnections()
    await new Promise(resolve => server.close(resolve))
    await broker.purge()
    await broker.close()
  })

  it('is not handed to onError, gets no 500, enqueues nothing; the server goes on', async () => {
    for (let i = 0; i < 5; i++) {
      const socket = connect(port, '127.0.0.1')
      socket.on('error', () => undefined)
      const answer: Buffer[] = []
      socket.on('data', (chunk: Buffer) => answer.push(chunk))
      socket.write(
        'POST /api/tasks HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n' +
          'Content-Length: 100\r\n\r\n{"name": "t.add", "ar',
      )
      // The server has the request (its headers and the first bytes of the body) before it goes.
      await until(() => settled.length > i, 5000, 'the request')
      const closed = new Promise(resolve => socket.once('close', resolve))
      // Half-closed (Node's parser may answer its own 400 to the cut body), or closed whole.
      if (i % 2 === 0) socket.end()
      else socket.destroy()
      await closed
      await settled[i]
      expect(Buffer.concat(answer).toString(), 'the answer to an aborted upload').to.not.match(
        /^HTTP\/1\.1 5/,
      )
    }
    expect(errors.map(e => String(e))).to.deep.equal([])
    expect(await broker.size()).to.equal(0)
    // The server still answers a whole request.
    const res = await fetch(`http://127.0.0.1:${port}/api/tasks`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name: 't.add', args: [1, 2] }),
    })
    expect(res.status).to.equal(201)
    expect(await broker.size()).to.equal(1)
  })
})
