/**
 * A task's page: its status, a live progress bar, its arguments and metadata, its result or error
 * (with the stack), attempts and timings, and its event timeline; Cancel and Retry.
 */
import { useEffect, useState } from 'preact/hooks'
import type { EventJson, TaskJson, WireValue } from '../../lib/http/types.js'
import { useAction } from './actions.js'
import { api } from './api.js'
import { live } from './events.js'
import { between, fraction, show, time } from './format.js'
import { useLive } from './hooks.js'
import { Value } from './value.js'

const LIVE = ['pending', 'enqueued', 'processing']
const ENDED_BADLY = ['failed', 'expired', 'cancelled']

/** The task's timeline: what its record says, and the events seen since the page loaded. */
function timeline(task: TaskJson): Array<{ time: string; what: string }> {
  const seen = live.recent.filter(e => e.id === task.id && e.queue === task.queue)
  const items = seen.map(e => ({ time: e.time, what: describe(e) }))
  const has = (type: string) => seen.some(e => e.type === type)
  if (!has('enqueued')) items.push({ time: task.createdAt, what: 'enqueued' })
  if (task.startedAt && !has('started'))
    items.push({ time: task.startedAt, what: `started (attempt ${task.attempt})` })
  if (task.finishedAt && !has(task.status)) items.push({ time: task.finishedAt, what: task.status })
  return items.sort((a, b) => a.time.localeCompare(b.time))
}

function describe(e: EventJson): string {
  switch (e.type) {
    case 'started':
      return `started (attempt ${e.attempt ?? 1}) on ${e.workerId ?? '?'}`
    case 'progress':
      return `progress ${show(e.progress).text.replace(/\s+/g, ' ')}`
    case 'completed':
      return `completed in ${e.ms ?? 0} ms`
    case 'retrying':
      return `attempt ${e.attempt ?? '?'} failed (${e.error?.message ?? ''}); retrying in ${e.delay ?? 0} ms`
    case 'failed':
    case 'expired':
    case 'cancelled':
      return `${e.type}${e.error ? `: ${e.error.name}: ${e.error.message}` : ''}`
    default:
      return e.type
  }
}

function Progress({ value }: { value: WireValue | undefined }) {
  const f = fraction(value)
  return (
    <div class="progress">
      {f === undefined ? (
        <progress aria-label="Progress" />
      ) : (
        <progress aria-label="Progress" max={100} value={Math.round(f * 100)} />
      )}
      <span>{f === undefined ? show(value).text : `${Math.round(f * 100)} %`}</span>
    </div>
  )
}

export function TaskPage({
  queue,
  id,
  readOnly,
}: {
  queue: string
  id: string
  readOnly: boolean
}) {
  const task = useLive(
    () => api.task(queue, id),
    e => e.id === id && e.queue === queue,
    [queue, id],
  )
  const [progress, setProgress] = useState<WireValue | undefined>()
  const [error, run] = useAction()
  useEffect(() => {
    setProgress(undefined)
    return live.on(e => {
      if (e.id === id && e.queue === queue && e.type === 'progress') setProgress(e.progress)
    })
  }, [queue, id])
  const t = task.data
  if (task.error)
    return (
      <main>
        <h1>Task {id}</h1>
        <p role="alert">{task.error.message}</p>
      </main>
    )
  if (!t)
    return (
      <main>
        <h1>Task {id}</h1>
        <p aria-busy="true">Loading…</p>
      </main>
    )
  const shownProgress = progress ?? t.progress
  return (
    <main>
      <h1>
        Task <code>{t.id}</code>
      </h1>
      <p>
        <strong>{t.name}</strong> on queue {t.queue}:{' '}
        <span class={`status ${t.status}`} data-testid="status">
          {t.status}
        </span>
        {t.cached && <span class="badge">cached</span>}
      </p>
      {!readOnly && (
        <div class="actions">
          {LIVE.includes(t.status) && (
            <button
              class="danger"
              onClick={() => run(() => api.cancel(queue, id)).then(task.reload)}
            >
              Cancel
            </button>
          )}
          {ENDED_BADLY.includes(t.status) && (
            <button
              onClick={() =>
                run(async () => {
                  const again = await api.retry(queue, id)
                  location.hash = `#/task/${encodeURIComponent(queue)}/${encodeURIComponent(again.id)}`
                })
              }
            >
              Retry
            </button>
          )}
        </div>
      )}
      {error && <p role="alert">{error}</p>}
      {(t.status === 'processing' || shownProgress !== undefined) && (
        <section aria-labelledby="h-progress">
          <h2 id="h-progress">Progress</h2>
          <Progress value={shownProgress} />
        </section>
      )}
      <section aria-labelledby="h-args">
        <h2 id="h-args">Arguments</h2>
        {t.args === undefined ? (
          <p class="muted">Not kept: a completed task keeps no copy of its arguments.</p>
        ) : (
          <ol class="args">
            {t.args.map((a, i) => (
              <li key={i}>
                <Value value={a} label={`Argument ${i + 1}`} />
              </li>
            ))}
          </ol>
        )}
      </section>
      {Object.keys(t.metadata).length > 0 && (
        <section aria-labelledby="h-meta">
          <h2 id="h-meta">Metadata</h2>
          <Value value={t.metadata} label="Metadata value" />
        </section>
      )}
      {t.status === 'completed' && (
        <section aria-labelledby="h-result">
          <h2 id="h-result">Result</h2>
          <Value value={t.value} label="Result value" />
        </section>
      )}
      {t.error && (
        <section aria-labelledby="h-error">
          <h2 id="h-error">Error</h2>
          <p>
            <strong>{t.error.name}</strong>
            {t.error.code && <code> {t.error.code}</code>}: {t.error.message}
          </p>
          {t.error.stack && (
            <pre class="stack" aria-label="Stack" tabIndex={0}>
              {t.error.stack}
            </pre>
          )}
        </section>
      )}
      <section aria-labelledby="h-timing">
        <h2 id="h-timing">Attempts and timings</h2>
        <dl class="facts">
          <dt>Attempt</dt>
          <dd>
            {t.attempt} of {t.attempts}
          </dd>
          <dt>Priority</dt>
          <dd>{t.priority}</dd>
          <dt>Created</dt>
          <dd>{time(t.createdAt)}</dd>
          {t.runAt && (
            <>
              <dt>Runs at</dt>
              <dd>{time(t.runAt)}</dd>
            </>
          )}
          <dt>Started</dt>
          <dd>{time(t.startedAt)}</dd>
          <dt>Finished</dt>
          <dd>{time(t.finishedAt)}</dd>
          <dt>Waited</dt>
          <dd>{between(t.createdAt, t.startedAt)}</dd>
          <dt>Ran</dt>
          <dd>{between(t.startedAt, t.finishedAt)}</dd>
          <dt>Worker</dt>
          <dd>{t.workerId ?? '—'}</dd>
        </dl>
      </section>
      <section aria-labelledby="h-timeline">
        <h2 id="h-timeline">Timeline</h2>
        <ol class="timeline">
          {timeline(t).map((x, i) => (
            <li key={i}>
              <time dateTime={x.time}>{time(x.time)}</time> {x.what}
            </li>
          ))}
        </ol>
      </section>
      <p>
        <a href={`#/tasks/${encodeURIComponent(queue)}`}>All tasks of {queue}</a>
      </p>
    </main>
  )
}
