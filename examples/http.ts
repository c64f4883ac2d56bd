// The HTTP API in a plain Node server: serve a queue, enqueue a call over HTTP, read its result.
// CI runs this file; `npx worq dashboard <url>` serves the same handler with the page on its own.
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { getBroker, TaskSpace, WorkerPool } from '../lib/index.js' // 'worq' in your code
import { worqHttp } from '../lib/http/index.js' // 'worq/http' in your code

const math = new TaskSpace('math', { add: (a: number, b: number) => a + b })
const broker = getBroker('memory://', 'default').expose(math)
const pool = new WorkerPool(broker)
await pool.start()

const handler = worqHttp(broker, { token: 'change-me' }) // also: app.use('/worq', handler) in Express
const server = http.createServer(handler).listen(0, '127.0.0.1')
await new Promise(resolve => server.once('listening', resolve))
const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
const headers = { authorization: 'Bearer change-me', 'content-type': 'application/json' }

const created = await fetch(`${base}/api/tasks`, {
  method: 'POST',
  headers,
  body: JSON.stringify({ name: 'math.add', args: [1, 2] }),
})
const location = created.headers.get('location')!
console.log(created.status, location) // 201 /api/tasks/<id>?queue=default
let task = (await (await fetch(base + location, { headers })).json()) as {
  status: string
  value?: unknown
}
while (task.status !== 'completed') {
  await new Promise(resolve => setTimeout(resolve, 10))
  task = (await (await fetch(base + location, { headers })).json()) as typeof task
}
console.log('math.add(1, 2) =', task.value) // 3

await handler.close()
server.close()
await pool.stop()
await broker.close()
