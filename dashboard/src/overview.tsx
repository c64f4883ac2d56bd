/**
 * The overview: each queue's counts (live), its completed and failed tasks per minute over the
 * last hour, its actions, and the live workers with what each runs.
 */
import type { ConfigJson, MetricsJson, QueueJson, WorkerJson } from '../../lib/http/types.js'
import { api } from './api.js'
import { QueueActions } from './actions.js'
import { MinuteChart } from './chart.js'
import { duration } from './format.js'
import { useLive } from './hooks.js'

const COUNTS = ['waiting', 'delayed', 'pending', 'processing'] as const

function QueueCard({
  queue,
  readOnly,
  reload,
}: {
  queue: QueueJson
  readOnly: boolean
  reload: () => void
}) {
  const metrics = useLive<MetricsJson>(
    () => api.metrics(queue.name),
    e => e.queue === queue.name && ['completed', 'failed'].includes(e.type),
    [queue.name],
  )
  return (
    <section class="card" aria-labelledby={`q-${queue.name}`}>
      <header>
        <h2 id={`q-${queue.name}`}>
          Queue {queue.name} {queue.paused && <span class="badge">paused</span>}
        </h2>
        <QueueActions queue={queue} readOnly={readOnly} onDone={reload} />
      </header>
      <dl class="counts" aria-label={`Counts of queue ${queue.name}`}>
        {COUNTS.map(k => (
          <div key={k}>
            <dt>{k}</dt>
            <dd data-count={k}>{queue[k]}</dd>
          </div>
        ))}
        <div>
          <dt>workers</dt>
          <dd data-count="workers">{queue.workers}</dd>
        </div>
      </dl>
      {queue.oldestWaitingMs !== null && (
        <p class="muted">oldest waiting task: {duration(queue.oldestWaitingMs)}</p>
      )}
      {metrics.data && <MinuteChart metrics={metrics.data} />}
      <p class="links">
        <a href={`#/tasks/${encodeURIComponent(queue.name)}`}>Tasks of {queue.name}</a>
        {!readOnly && (
          <a href={`#/submit/${encodeURIComponent(queue.name)}`}>Enqueue a task on {queue.name}</a>
        )}
      </p>
    </section>
  )
}

function Workers({ workers }: { workers: WorkerJson[] }) {
  if (workers.length === 0) return <p class="muted">No live workers.</p>
  return (
    <div class="scroll">
      <table>
        <caption>Live workers</caption>
        <thead>
          <tr>
            <th scope="col">Worker</th>
            <th scope="col">Queue</th>
            <th scope="col">Host</th>
            <th scope="col">Running</th>
            <th scope="col">Runs now</th>
          </tr>
        </thead>
        <tbody>
          {workers.map(w => (
            <tr key={w.queue + w.id}>
              <td>
                <code>{w.id}</code>
              </td>
              <td>{w.queue}</td>
              <td>
                {w.hostname} pid {w.pid}
              </td>
              <td>
                {w.running}/{w.concurrency}
              </td>
              <td>
                {w.tasks.length === 0
                  ? '—'
                  : w.tasks.map(id => (
                      <a
                        key={id}
                        class="task-link"
                        href={`#/task/${encodeURIComponent(w.queue)}/${encodeURIComponent(id)}`}
                      >
                        {id}
                      </a>
                    ))}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  )
}

export function Overview({ config }: { config: ConfigJson }) {
  const queues = useLive(api.queues, () => true, [])
  const workers = useLive(
    api.workers,
    e => ['started', 'completed', 'failed', 'cancelled', 'expired', 'retrying'].includes(e.type),
    [],
  )
  return (
    <main>
      <h1>Overview</h1>
      {queues.error && <p role="alert">{queues.error.message}</p>}
      <div class="cards">
        {(queues.data ?? []).map(q => (
          <QueueCard key={q.name} queue={q} readOnly={config.readOnly} reload={queues.reload} />
        ))}
      </div>
      <h2>Workers</h2>
      {workers.data && <Workers workers={workers.data} />}
    </main>
  )
}
