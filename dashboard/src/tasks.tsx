/**
 * A queue's tasks: status tabs, a name filter, pages of 25, newest first; each row links to the
 * task's page. The view's state lives in the URL (#/tasks/<queue>?status=&name=&page=).
 */
import { useState } from 'preact/hooks'
import type { TaskJson } from '../../lib/http/types.js'
import { api } from './api.js'
import { time } from './format.js'
import { useLive } from './hooks.js'

const PAGE = 25
const TABS = [
  'all',
  'enqueued',
  'pending',
  'processing',
  'completed',
  'failed',
  'expired',
  'cancelled',
]

function href(queue: string, status: string, name: string, page: number): string {
  const p = new URLSearchParams()
  if (status !== 'all') p.set('status', status)
  if (name) p.set('name', name)
  if (page > 0) p.set('page', String(page))
  const s = p.toString()
  return `#/tasks/${encodeURIComponent(queue)}${s ? `?${s}` : ''}`
}

export function Tasks({ queue, params }: { queue: string; params: URLSearchParams }) {
  const status = params.get('status') ?? 'all'
  const name = params.get('name') ?? ''
  const page = Math.max(0, Number(params.get('page') ?? 0) || 0)
  const [filter, setFilter] = useState(name)
  const tasks = useLive<TaskJson[]>(
    () =>
      api.tasks({
        queue,
        ...(status !== 'all' && { status }),
        ...(name && { name }),
        limit: PAGE + 1,
        offset: page * PAGE,
      }),
    e => e.queue === queue,
    [queue, status, name, page],
  )
  const rows = tasks.data?.slice(0, PAGE) ?? []
  const more = (tasks.data?.length ?? 0) > PAGE
  return (
    <main>
      <h1>Tasks of {queue}</h1>
      <nav class="tabs" role="tablist" aria-label="Status">
        {TABS.map(t => (
          <a key={t} role="tab" aria-selected={t === status} href={href(queue, t, name, 0)}>
            {t}
          </a>
        ))}
      </nav>
      <form
        class="filter"
        role="search"
        onSubmit={e => {
          e.preventDefault()
          location.hash = href(queue, status, filter.trim(), 0)
        }}
      >
        <label>
          Filter by name
          <input
            value={filter}
            placeholder="math.add or math."
            onInput={e => setFilter((e.target as HTMLInputElement).value)}
          />
        </label>
        <button type="submit">Filter</button>
      </form>
      {tasks.error && <p role="alert">{tasks.error.message}</p>}
      <div class="scroll">
        <table>
          <caption>
            {status === 'all' ? 'All' : status} tasks{name ? ` named ${name}` : ''}, page {page + 1}
          </caption>
          <thead>
            <tr>
              <th scope="col">Task</th>
              <th scope="col">Name</th>
              <th scope="col">Status</th>
              <th scope="col">Attempt</th>
              <th scope="col">Created</th>
            </tr>
          </thead>
          <tbody>
            {rows.map(t => (
              <tr key={t.id}>
                <td>
                  <a href={`#/task/${encodeURIComponent(queue)}/${encodeURIComponent(t.id)}`}>
                    {t.id}
                  </a>
                </td>
                <td>{t.name}</td>
                <td>
                  <span class={`status ${t.status}`}>{t.status}</span>
                </td>
                <td>
                  {t.attempt}/{t.attempts}
                </td>
                <td>{time(t.createdAt)}</td>
              </tr>
            ))}
            {tasks.data && rows.length === 0 && (
              <tr>
                <td colSpan={5} class="muted">
                  No tasks.
                </td>
              </tr>
            )}
          </tbody>
        </table>
      </div>
      <nav class="pager" aria-label="Pages">
        {page > 0 && <a href={href(queue, status, name, page - 1)}>Previous page</a>}
        {more && <a href={href(queue, status, name, page + 1)}>Next page</a>}
      </nav>
    </main>
  )
}
