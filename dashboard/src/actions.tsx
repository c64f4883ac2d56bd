/**
 * Queue actions: Pause / Resume, and Purge behind a dialog that names the queue and asks for its
 * name to be typed. Errors of an action are shown next to it (role alert).
 */
import { useRef, useState } from 'preact/hooks'
import type { QueueJson } from '../../lib/http/types.js'
import { api } from './api.js'

/** Runs an action, keeping its error for display. */
export function useAction(): [string | undefined, (fn: () => Promise<unknown>) => Promise<void>] {
  const [error, setError] = useState<string>()
  const run = async (fn: () => Promise<unknown>) => {
    setError(undefined)
    try {
      await fn()
    } catch (e) {
      setError((e as Error).message)
    }
  }
  return [error, run]
}

export function QueueActions({
  queue,
  readOnly,
  onDone,
}: {
  queue: QueueJson
  readOnly: boolean
  onDone: () => void
}) {
  const [error, run] = useAction()
  const dialog = useRef<HTMLDialogElement>(null)
  const [typed, setTyped] = useState('')
  if (readOnly) return <p class="muted">read-only</p>
  const waiting = queue.waiting + queue.delayed + queue.pending
  return (
    <div class="actions">
      {queue.paused ? (
        <button
          aria-label={`Resume queue ${queue.name}`}
          onClick={() => run(() => api.resume(queue.name)).then(onDone)}
        >
          Resume
        </button>
      ) : (
        <button
          aria-label={`Pause queue ${queue.name}`}
          onClick={() => run(() => api.pause(queue.name)).then(onDone)}
        >
          Pause
        </button>
      )}
      <button
        class="danger"
        aria-label={`Purge queue ${queue.name}`}
        onClick={() => {
          setTyped('')
          dialog.current?.showModal()
        }}
      >
        Purge
      </button>
      {error && <p role="alert">{error}</p>}
      <dialog ref={dialog} aria-labelledby={`purge-${queue.name}`}>
        <form
          method="dialog"
          onSubmit={e => {
            e.preventDefault()
            if (typed !== queue.name) return
            dialog.current?.close()
            void run(() => api.purge(queue.name)).then(onDone)
          }}
        >
          <h2 id={`purge-${queue.name}`}>Purge queue {queue.name}?</h2>
          <p>
            Its {waiting} waiting task{waiting === 1 ? '' : 's'} (enqueued, delayed, pending) will
            be cancelled; running tasks go on.
          </p>
          <label>
            Type <strong>{queue.name}</strong> to confirm
            <input
              value={typed}
              autoComplete="off"
              onInput={e => setTyped((e.target as HTMLInputElement).value)}
            />
          </label>
          <div class="actions">
            <button type="submit" class="danger" disabled={typed !== queue.name}>
              Purge {queue.name}
            </button>
            <button type="button" onClick={() => dialog.current?.close()}>
              Keep tasks
            </button>
          </div>
        </form>
      </dialog>
    </div>
  )
}
