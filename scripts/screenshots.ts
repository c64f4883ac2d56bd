// `npm run screenshots`: the pictures in docs/dashboard.md. Serves the dashboard of a memory://
// queue with a worker pool and a few tasks (some done, one failed, one running with progress),
// opens it in Debian's Chromium and saves the overview and a task page as PNGs in docs/images/.
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { getBroker, TaskSpace, WorkerPool, type TaskContext } from '../lib/index.js'
import { worqHttp } from '../lib/http/index.js'
import { chromiumMissing, launchChromium } from '../test/helpers/browser.js'

const missing = chromiumMissing()
if (missing) throw new Error(missing)
const out = new URL('../docs/images/', import.meta.url)

let release!: () => void
const held = new Promise<void>(r => (release = r))
const reports = new TaskSpace('reports', {
  async build(this: TaskContext, month: string, pages: number) {
    for (let i = 1; i <= pages; i++) {
      this.progress({ done: i, total: pages * 2 })
      await new Promise(r => setTimeout(r, 5))
    }
    await held
    return { month, pages }
  },
  async render(day: Date) {
    return `rendered ${day.toISOString().slice(0, 10)}`
  },
  async mail(to: string) {
    throw new Error(`mailbox ${to} is full`)
  },
})
const broker = getBroker('memory://', 'default').expose(reports)
const emails = getBroker('memory://', 'emails').expose(reports)
const pools = [
  new WorkerPool(broker, { concurrency: 4, sweepInterval: 500 }),
  new WorkerPool(emails, { concurrency: 2, sweepInterval: 500 }),
]
for (const p of pools) await p.start()
const q = broker.queue<typeof reports>()
for (let i = 0; i < 12; i++) await (await q.reports.render(new Date(2026, 10, i + 1))).wait(2000)
await (await q.reports.mail('ops@example.org')).wait(2000)
await emails.pause()
for (let i = 0; i < 3; i++) await emails.queue<typeof reports>().reports.render(new Date())
const running = await q.reports.build('2026-11', 6)
// Wait until the worker's registration (refreshed every sweep interval) lists the running task.
while (!(await broker.inspect()).workers.some(w => w.tasks.includes(running.id)))
  await new Promise(r => setTimeout(r, 100))

const handler = worqHttp([broker, emails])
const server = createServer(handler).listen(0, '127.0.0.1')
await new Promise(r => server.once('listening', r))
const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`
const { context, close } = await launchChromium({ width: 1200, height: 860 })
const page = context.pages()[0] ?? (await context.newPage())
await page.goto(base)
await page.getByRole('heading', { name: 'Queue default' }).waitFor()
await page.getByRole('img', { name: /Queue default, last hour: 12 completed/ }).waitFor()
await page.screenshot({ path: new URL('dashboard-overview.png', out).pathname, fullPage: true })
await page.goto(`${base}#/task/default/${running.id}`)
await page.getByRole('progressbar', { name: 'Progress' }).waitFor()
await page.screenshot({ path: new URL('dashboard-task.png', out).pathname, fullPage: true })
await page.setViewportSize({ width: 375, height: 740 })
await page.goto(base)
await page.getByRole('heading', { name: 'Queue default' }).waitFor()
await page.screenshot({ path: new URL('dashboard-375.png', out).pathname })
await close()
release()
await handler.close()
server.close()
for (const p of pools) await p.stop()
await broker.close()
await emails.close()
console.log('screenshots in docs/images/')
