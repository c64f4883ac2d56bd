/**
 * Enqueues in the caller's transaction, one statement at a time on its client. A client runs one
 * query at a time, and node-postgres deprecates (and prints a warning about) a query sent while
 * another of the same client runs: so a call made while one of the client's statements is under
 * way waits, with every other call made meanwhile on that client, and they go together when it
 * ends, one statement per queue in the order they were made. A call on an idle client goes at
 * once, as a call always did.
 */
import type { NewTask, TransactionalBackend } from './backends/backend.js'
import type { TransactionClient } from './types.js'

/** A call waiting for its statement. */
interface TxCall {
  backend: TransactionalBackend
  queue: string
  task: NewTask
  resolve: (outcome: 'ok' | 'duplicate') => void
  reject: (err: unknown) => void
}

/** A client's calls waiting for the statement under way, if one is. */
interface ClientState {
  busy: boolean
  waiting: TxCall[]
}

const clients = new WeakMap<TransactionClient, ClientState>()

/** Enqueues `task` on `queue` in the transaction of `tx`; answers as `Backend.enqueue` does. */
export function enqueueInTx(
  tx: TransactionClient,
  backend: TransactionalBackend,
  queue: string,
  task: NewTask,
): Promise<'ok' | 'duplicate'> {
  let state = clients.get(tx)
  if (!state) clients.set(tx, (state = { busy: false, waiting: [] }))
  const s = state
  return new Promise((resolve, reject) => {
    s.waiting.push({ backend, queue, task, resolve, reject })
    if (!s.busy) void send(tx, s)
  })
}

/** Sends what waits on `tx`, a statement per run of calls on one queue, then what came since. */
async function send(tx: TransactionClient, s: ClientState): Promise<void> {
  s.busy = true
  while (s.waiting.length > 0) {
    const calls = s.waiting
    s.waiting = []
    for (let from = 0; from < calls.length;) {
      const first = calls[from]!
      let to = from + 1
      while (
        to < calls.length &&
        calls[to]!.queue === first.queue &&
        calls[to]!.backend === first.backend
      )
        to++
      const run = calls.slice(from, to)
      try {
        const outcomes = await first.backend.enqueueIn(
          tx,
          first.queue,
          run.map(c => c.task),
        )
        run.forEach((c, i) => c.resolve(outcomes[i]!))
      } catch (err) {
        for (const c of run) c.reject(err)
      }
      from = to
    }
  }
  s.busy = false
}
