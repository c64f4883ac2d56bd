/**
 * Queue actions: Pause / Resume, and Purge behind a dialog that names the queue and what a purge
 * cancels. The buttons' accessible names are their words (Pause, Resume, Purge): a queue's card
 * (a region named by the queue) tells one queue's buttons from another's. Errors of an action are
 * shown next to it (role alert).
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
  // While the dialog is open the page behind it is inert; its buttons also leave the
  // accessibility tree, so that the one button named Purge is then the dialog's.
  const [open, setOpen] = useState(false)
  if (readOnly) return <p class="muted">read-only</p>
  const waiting = queue.waiting + queue.delayed + queue.pending
  return (
    <div class="actions">
      {queue.paused ? (
        <button aria-hidden={open} onClick={() => run(() => api.resume(queue.name)).then(onDone)}>
          Resume
        </button>
      ) : (
        <button aria-hidden={open} onClick={() => run(() => api.pause(queue.name)).then(onDone)}>
          Pause
        </button>
      )}
      <button
        class="danger"
        aria-hidden={open}
        onClick={() => {
          setOpen(true)
          dialog.current?.showModal()
        }}
      >
        Purge
      </button>
      {error && <p role="alert">{error}</p>}
      <dialog ref={dialog} aria-labelledby={`purge-${queue.name}`} onClose={() => setOpen(false)}>
        <form
          method="dialog"
          onSubmit={e => {
            e.preventDefault()
            dialog.current?.close()
            void run(() => api.purge(queue.name)).then(onDone)
          }}
        >
          <h2 id={`purge-${queue.name}`}>Purge queue {queue.name}?</h2>
          <p>
            Its {waiting} waiting task{waiting === 1 ? '' : 's'} (enqueued, delayed, pending) will
            be cancelled; running tasks go on.
          </p>
          <div class="actions">
            <button type="submit" class="danger">
              Purge
            </button>
            <button type="button" autoFocus onClick={() => dialog.current?.close()}>
              Keep tasks
            </button>
          </div>
        </form>
      </dialog>
    </div>
  )
}
