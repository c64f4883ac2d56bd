/**
 * The dashboard in a real browser: Debian's Chromium driven by playwright-core, against
 * `worq dashboard` started as a process on a private Redis, with a worker pool in this process.
 * Every step finds what a person would, by role and accessible name, and waits on what the page
 * shows (never a fixed time): the queue and its counts changing as tasks run, a running task's
 * progress moving, Cancel, Retry of a failed task, Pause and Resume, Purge through its dialog (by
 * keyboard), and a call submitted through the form. The page talks to no other host and fits a
 * 375 px wide screen.
 */
import { expect } from 'chai'
import { buildDashboardPage } from '../helpers/dashboard-page.js'
import { EventEmitter } from 'node:events'
import type { Page } from 'playwright-core'
import { getBroker, TaskSpace, WorkerPool, type Broker, type TaskContext } from '../../lib/index.js'
import { chromiumMissing, launchChromium } from '../helpers/browser.js'
import { worq, type CliProcess } from '../helpers/cli.js'
import { startRedis, type RedisServer } from '../helpers/redis-server.js'
import { until } from '../helpers/util.js'

const QUEUE = 'reports'

describe('dashboard: a person drives the page in Chromium', function () {
  this.timeout(60_000)
  let redis: RedisServer
  let dashboard: CliProcess
  let broker: Broker
  let pool: WorkerPool
  let base: string
  let page: Page
  let closeBrowser: () => Promise<void>
  const requested: string[] = []
  const bus = new EventEmitter()
  let flaky = true

  before(async function () {
    const missing = chromiumMissing()
    if (missing) {
      // CI installs Chromium (.ci/run), so there this is a failure, not a skip.
      if (process.env.CI) throw new Error(missing)
      console.warn(`      skipped: ${missing}`)
      // Skipped on purpose outside CI: no Chromium to drive on this machine (the reason is printed).
      this.skip() // reason: no Chromium on this machine outside CI
    }
    buildDashboardPage()
    redis = await startRedis()
    broker = getBroker(redis.url, QUEUE).expose(
      new TaskSpace('r', {
        add: (a: number, b: number) => a + b,
        flaky: (what: string) => {
          if (flaky) throw new Error(`${what} is not ready`)
          return `${what} built`
        },
        async step(this: TaskContext, steps: number) {
          for (let i = 1; i <= steps; i++) {
            await new Promise((resolve, reject) => {
              bus.once('advance', resolve)
              this.signal.addEventListener('abort', () => reject(this.signal.reason), {
                once: true,
              })
            })
            this.progress({ done: i, total: steps })
          }
          return 'stepped'
        },
      }),
    )
    // No prefetch: the second step task waits in line (it would be held ahead, `processing`).
    pool = new WorkerPool(broker, { concurrency: 1, prefetch: 0, sweepInterval: 200 })
    await pool.start()
    dashboard = worq(['dashboard', redis.url, '--queue', QUEUE, '--port', '0'])
    const line = await dashboard.line(/^worq dashboard: http:\/\//)
    base = /(http:\/\/\S+\/)/.exec(line)![1]!
    const browser = await launchChromium({ width: 1200, height: 900 })
    closeBrowser = browser.close
    browser.context.on('request', r => requested.push(r.url()))
    page = browser.context.pages()[0] ?? (await browser.context.newPage())
    page.setDefaultTimeout(10_000)
  })

  after(async () => {
    bus.emit('advance')
    await closeBrowser?.()
    if (dashboard) {
      dashboard.proc.kill('SIGINT')
      expect((await dashboard.exited).code).to.equal(0)
    }
    await pool?.stop({ timeout: 1000 })
    await broker?.close()
    await redis?.stop()
  })

  const count = (name: string, value: number) =>
    page
      .locator(`[data-count="${name}"]`)
      .filter({ hasText: new RegExp(`^${value}$`) })
      .waitFor()
  const status = (value: string) =>
    page
      .getByTestId('status')
      .filter({ hasText: new RegExp(`^${value}$`) })
      .waitFor()

  it('shows the queue, and its counts change as tasks run', async () => {
    await page.goto(base)
    await page.getByRole('heading', { name: `Queue ${QUEUE}` }).waitFor()
    await page
      .getByRole('status')
      .filter({ hasText: /^live$/ })
      .waitFor()
    await count('workers', 1)
    const q = broker.queue()
    const f = await q.r.flaky('report')
    await f.wait(5000)
    await q.r.step(3)
    await q.r.step(3)
    await count('processing', 1)
    await count('waiting', 1)
    await page
      .getByRole('img', { name: `Queue ${QUEUE}, last hour: 0 completed, 1 failed` })
      .waitFor()
  })

  it('opens the running task and watches its progress move; Cancel cancels it', async () => {
    const running = (await broker.tasks({ status: 'processing' }))[0]!
    await page.getByRole('link', { name: `Tasks of ${QUEUE}` }).click()
    await page.getByRole('tab', { name: 'processing' }).click()
    await page.getByRole('link', { name: running.id }).click()
    await page.getByRole('heading', { name: `Task ${running.id}` }).waitFor()
    await status('processing')
    const bar = page.getByRole('progressbar', { name: 'Progress' })
    await bar.waitFor()
    bus.emit('advance')
    await page.locator('progress[value="33"]').waitFor()
    bus.emit('advance')
    await page.locator('progress[value="67"]').waitFor()
    expect(await bar.getAttribute('max')).to.equal('100')
    await page
      .getByRole('listitem')
      .filter({ hasText: /progress \{ "done": 2/ })
      .waitFor()
    await page.getByRole('button', { name: 'Cancel' }).click()
    await status('cancelled')
    await page.getByRole('heading', { name: 'Error' }).waitFor()
    await page.getByText('TaskCancelled').first().waitFor()
    expect((await broker.task(running.id))!.status).to.equal('cancelled')
  })

  it('retries a failed task: the new task runs with the same arguments', async () => {
    await page.getByRole('link', { name: `All tasks of ${QUEUE}` }).click()
    await page.getByRole('tab', { name: 'failed' }).click()
    const failed = (await broker.tasks({ status: 'failed' }))[0]!
    await page.getByRole('link', { name: failed.id }).click()
    const error = page.getByRole('region', { name: 'Error' })
    await error.getByText('Error: report is not ready', { exact: true }).waitFor()
    await error.getByLabel('Stack').filter({ hasText: 'at ' }).waitFor()
    await page.getByLabel('Argument 1').filter({ hasText: '"report"' }).waitFor()
    flaky = false
    // The other step task holds the only slot: step it to its end first.
    await until(
      async () => {
        bus.emit('advance')
        return (await broker.inspect()).processing === 0
      },
      10_000,
      'the other step task to finish',
    )
    await page.getByRole('button', { name: 'Retry' }).click()
    await page.waitForURL(
      url => !url.hash.endsWith(failed.id) && url.hash.startsWith(`#/task/${QUEUE}/`),
    )
    await status('completed')
    await page.getByLabel('Result value').filter({ hasText: '"report built"' }).waitFor()
    expect((await broker.tasks({ name: 'r.flaky', status: 'completed' }))[0]!.value).to.equal(
      'report built',
    )
  })

  it('pauses and resumes the queue', async () => {
    await page.getByRole('link', { name: 'Overview' }).click()
    // The buttons are named by their words (the queue's card tells queues apart).
    const card = page.getByRole('region', { name: QUEUE })
    await card.getByRole('button', { name: 'Pause', exact: true }).click()
    await page.getByRole('button', { name: 'Resume', exact: true }).waitFor()
    await page.getByText('paused', { exact: true }).waitFor()
    expect(await broker.isPaused()).to.equal(true)
    await page.getByRole('button', { name: 'Resume', exact: true }).click()
    await page.getByRole('button', { name: 'Pause', exact: true }).waitFor()
    expect(await broker.isPaused()).to.equal(false)
  })

  it('purges the waiting tasks through a dialog that names the queue, by keyboard', async () => {
    await broker.pause()
    const q = broker.queue()
    for (let i = 0; i < 3; i++) await q.r.add(i, i)
    await count('waiting', 3)
    await page.getByRole('button', { name: 'Purge', exact: true }).focus()
    await page.keyboard.press('Enter')
    const dialog = page.getByRole('dialog', { name: `Purge queue ${QUEUE}?` })
    await dialog.waitFor()
    await dialog.getByText('3 waiting tasks').waitFor()
    // The page behind the open dialog is inert: one button named Purge is left, the dialog's.
    expect(await page.getByRole('button', { name: 'Purge', exact: true }).count()).to.equal(1)
    // Focus starts on "Keep tasks": Enter alone would keep them.
    await dialog.getByRole('button', { name: 'Purge', exact: true }).press('Enter')
    await count('waiting', 0)
    expect(await broker.size()).to.equal(0)
    await page.getByRole('button', { name: 'Resume', exact: true }).click()
    await page.getByRole('button', { name: 'Pause', exact: true }).waitFor()
  })

  it('submits a call of an exposed task through the form and shows its result', async () => {
    await page.getByRole('link', { name: `Enqueue a task on ${QUEUE}` }).click()
    await page.getByRole('option', { name: 'r.add' }).waitFor({ state: 'attached' })
    await page.getByLabel('Task', { exact: true }).selectOption('r.add')
    await page.getByLabel('Arguments (a JSON array)').fill('[2, 3]')
    await page.getByLabel('Priority (lower runs first)').fill('1')
    await page.getByRole('button', { name: 'Enqueue' }).click()
    await status('completed')
    await page.getByLabel('Result value').filter({ hasText: /^5$/ }).waitFor()
    const done = await broker.tasks({ name: 'r.add', status: 'completed' })
    expect(done.map(t => [t.value, t.priority])).to.deep.include([5, 1])
  })

  it('fits a 375 px wide screen, and asked no other host for anything', async () => {
    await page.setViewportSize({ width: 375, height: 740 })
    await page.getByRole('link', { name: 'Overview' }).click()
    await page.getByRole('heading', { name: `Queue ${QUEUE}` }).waitFor()
    const width = (await page.evaluate('document.documentElement.scrollWidth')) as number
    expect(width).to.be.at.most(375)
    await until(() => requested.length > 0, 1000, 'requests')
    expect(requested.filter(u => !u.startsWith(base))).to.deep.equal([])
  })
})
