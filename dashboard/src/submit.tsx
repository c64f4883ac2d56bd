/**
 * The form that enqueues a call of a task the queue's live workers expose: the task, its
 * arguments as a JSON array, and a few options. On success it opens the new task's page.
 */
import { useState } from 'preact/hooks'
import type { SubmitJson } from '../../lib/http/types.js'
import { api } from './api.js'
import { useLive } from './hooks.js'

function parse(text: string, what: string, check: (v: unknown) => boolean): unknown {
  let v: unknown
  try {
    v = JSON.parse(text)
  } catch {
    throw new Error(`${what} is not JSON`)
  }
  if (!check(v)) throw new Error(`${what} has the wrong shape`)
  return v
}

export function Submit({ queue }: { queue: string }) {
  const types = useLive(
    () => api.types(queue),
    e => e.type === 'started',
    [queue],
  )
  const [name, setName] = useState('')
  const [args, setArgs] = useState('[]')
  const [priority, setPriority] = useState('')
  const [delay, setDelay] = useState('')
  const [id, setId] = useState('')
  const [metadata, setMetadata] = useState('')
  const [error, setError] = useState<string>()
  const [busy, setBusy] = useState(false)
  const names = types.data?.map(t => t.name) ?? []
  const chosen = name || names[0] || ''

  const submit = async (e: Event) => {
    e.preventDefault()
    setError(undefined)
    try {
      const options: NonNullable<SubmitJson['options']> = {}
      if (priority.trim()) options.priority = Number(priority)
      if (delay.trim()) options.delay = Number(delay)
      if (id.trim()) options.id = id.trim()
      if (metadata.trim())
        options.metadata = parse(
          metadata,
          'Metadata',
          v => typeof v === 'object' && v !== null && !Array.isArray(v),
        ) as never
      const body: SubmitJson = {
        queue,
        name: chosen,
        args: parse(args, 'Arguments', Array.isArray) as never,
        options,
      }
      setBusy(true)
      const task = await api.submit(body)
      location.hash = `#/task/${encodeURIComponent(queue)}/${encodeURIComponent(task.id)}`
    } catch (err) {
      setError((err as Error).message)
    } finally {
      setBusy(false)
    }
  }

  return (
    <main>
      <h1>Enqueue a task on {queue}</h1>
      {names.length === 0 && types.data && (
        <p role="status">No live worker of {queue} exposes a task yet: start one first.</p>
      )}
      <form class="form" onSubmit={submit}>
        <div class="field">
          <label for="submit-task">Task</label>
          <select
            id="submit-task"
            value={chosen}
            onChange={e => setName((e.target as HTMLSelectElement).value)}
          >
            {names.map(n => (
              <option key={n} value={n}>
                {n}
              </option>
            ))}
          </select>
        </div>
        <label>
          Arguments (a JSON array)
          <textarea
            rows={3}
            value={args}
            onInput={e => setArgs((e.target as HTMLTextAreaElement).value)}
          />
        </label>
        <label>
          Priority (lower runs first)
          <input
            type="number"
            value={priority}
            onInput={e => setPriority((e.target as HTMLInputElement).value)}
          />
        </label>
        <label>
          Delay (ms)
          <input
            type="number"
            min={0}
            value={delay}
            onInput={e => setDelay((e.target as HTMLInputElement).value)}
          />
        </label>
        <label>
          Task id (optional)
          <input value={id} onInput={e => setId((e.target as HTMLInputElement).value)} />
        </label>
        <label>
          Metadata (a JSON object, optional)
          <textarea
            rows={2}
            value={metadata}
            onInput={e => setMetadata((e.target as HTMLTextAreaElement).value)}
          />
        </label>
        {error && <p role="alert">{error}</p>}
        <button type="submit" disabled={busy || !chosen}>
          Enqueue
        </button>
      </form>
    </main>
  )
}
