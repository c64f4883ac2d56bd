/**
 * A worqHttp handler on a loopback port for tests, and a small client on node:http that sends
 * exactly the bytes it is given (bad UTF-8, huge bodies, odd headers) and reads the answer even
 * when the server closes the connection while the body is still going out.
 */
import {
  createServer,
  request,
  type IncomingHttpHeaders,
  type RequestListener,
  type ServerOptions,
} from 'node:http'
import type { AddressInfo } from 'node:net'

/** An answer. */
export interface Answer {
  status: number
  headers: IncomingHttpHeaders
  text: string
  /** The body parsed as JSON (undefined when it is not JSON). */
  json: any
}

/** What `call` sends. */
export interface CallOptions {
  /** A value sent as JSON (with Content-Type: application/json), or raw bytes/text. */
  json?: unknown
  body?: string | Buffer
  headers?: Record<string, string>
}

/** A running server and a client of it. */
export interface TestServer {
  base: string
  call(method: string, path: string, options?: CallOptions): Promise<Answer>
  close(): Promise<void>
}

/** Serves `listener` on a free loopback port, with the server `options` (Node's timeouts). */
export async function serve(
  listener: RequestListener,
  options: ServerOptions = {},
): Promise<TestServer> {
  const server = createServer(options, listener)
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return {
    base: `http://127.0.0.1:${port}`,
    call: (method, path, options = {}) => call(port, method, path, options),
    async close() {
      server.closeAllConnections()
      await new Promise(resolve => server.close(resolve))
    },
  }
}

function call(port: number, method: string, path: string, o: CallOptions): Promise<Answer> {
  const headers: Record<string, string> = { ...o.headers }
  let body = o.body
  if (o.json !== undefined) {
    body = JSON.stringify(o.json)
    headers['content-type'] ??= 'application/json'
  }
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method, path, headers }, res => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8')
        let json: unknown
        try {
          json = JSON.parse(text)
        } catch {
          json = undefined
        }
        resolve({ status: res.statusCode!, headers: res.headers, text, json })
      })
    })
    let answered = false
    req.on('response', () => (answered = true))
    req.on('error', err => {
      // The server may close while a refused body is still going out: the answer counts.
      if (!answered) reject(err)
    })
    if (body !== undefined) req.end(body)
    else req.end()
  })
}
