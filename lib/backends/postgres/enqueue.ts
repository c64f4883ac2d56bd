/**
 * The enqueue of a batch on postgres://. A batch of plain calls (no Deferred argument, no result
 * cache) is written by one statement (`enqueue_batch`, schema/018_lone_handover.sql; a statement
 * of this file's until schema version 10): one INSERT … SELECT FROM json_to_recordset of the
 * batch, each task straight into its line (or the delayed set, or a parked worker's hands) in the
 * batch's order, one inbox row for all their `enqueued` events and one wake-up. (`backoff`, an
 * object, is read as text and cast: read as jsonb by json_to_recordset it cost the server 10 µs a
 * task, most of the statement; a backoff shared by the whole batch is sent and cast once.) The
 * rows carry only what differs from the defaults, under one-letter keys (`plainRow`). A batch
 * whose ids were all generated is written without a check for ids taken (`fresh`). A task whose
 * id is taken (a live task: a duplicate; a finished one, replaced; or this very call sent again
 * after its reply was lost) sends its batch again through the `enqueue` function, task by task
 * (schema/002_tasks.sql), as every other batch goes. Each call carries a tag of its own
 * (`enqueue_tag`), by which the same call sent again finds the tasks it wrote: they answer 'ok'.
 */
import { nanoid } from 'nanoid'
import type { NewTask } from '../backend.js'
import type { PgPool } from './pool.js'

type Answer = 'ok' | 'duplicate'

/*
 * A plain task's row carries, under one-letter keys, what `enqueue_batch` reads with
 * json_to_recordset (i id, n name, p payload, o onError, g ignoreResult, r resultTimeout,
 * h heartrate, a attempts, b backoff, u runAt, t timeout, y priority, m metadata, c trace); a key
 * left out is the field's default (`plainRow`). The server parses the whole batch as JSON, so what
 * it is not sent it does not parse: an ordinary call's row is about a third of its NewTask's JSON.
 */

/** A plain task as a row of the batch, defaults left out; `b` when the batch shares no backoff. */
function plainRow(t: NewTask, backoff: string | null): Record<string, unknown> {
  const row: Record<string, unknown> = {
    i: t.id,
    n: t.name,
    p: t.payload,
    r: t.resultTimeout,
    h: t.heartrate,
    a: t.attempts,
  }
  if (t.onError !== 'fail') row.o = t.onError
  if (t.ignoreResult) row.g = true
  if (backoff === null) row.b = JSON.stringify(t.backoff)
  if (t.runAt) row.u = t.runAt
  if (t.timeout) row.t = t.timeout
  if (t.priority) row.y = t.priority
  if (t.metadata) row.m = t.metadata
  if (t.trace) row.c = t.trace
  return row
}

/** The backoff (its JSON) every task of the batch has, or null when they differ. */
function sharedBackoff(tasks: readonly NewTask[]): string | null {
  const first = tasks[0]!.backoff
  for (const t of tasks) {
    const b = t.backoff
    if (
      b !== first &&
      (b.type !== first.type ||
        b.delay !== first.delay ||
        b.jitter !== first.jitter ||
        b.maxDelay !== first.maxDelay)
    )
      return null
  }
  return JSON.stringify(first)
}

/**
 * The one statement of a plain batch: $1 queue, $2 the rows (JSON, `plainRow`), $3 origin, $4 tag,
 * $5 the batch's backoff (JSON; null when each row has its own): cast to jsonb once, not per row;
 * $6 true when every id was generated (`fresh`: written without a check for ids taken).
 * `<schema>.enqueue_batch` (schema/018_lone_handover.sql) writes the batch, and hands its first
 * tasks to workers parked on the queue (docs/postgres.md, "Handover").
 */
function plainSql(s: string): string {
  return `SELECT ${s}.enqueue_batch($1, $2::json, $3, $4, $5::jsonb, $6) AS n`
}

/** PostgreSQL's unique_violation: an id taken, in a batch written without the check. */
const ID_TAKEN = '23505'

/** Enqueues batches of one schema's queues. */
export class BatchEnqueue {
  readonly #db: PgPool
  readonly #schema: string
  readonly #plain: string
  /** Per queue, the last batch under way (settled either way), while there is one. */
  readonly #tails = new Map<string, Promise<void>>()

  constructor(db: PgPool, schema: string) {
    this.#db = db
    this.#schema = schema
    this.#plain = plainSql(schema)
  }

  /** 'ok' or 'duplicate' per task, in order; `origin` is the instance outcomes go to. */
  enqueue(queue: string, tasks: readonly NewTask[], origin: string | null): Promise<Answer[]> {
    const tag = nanoid()
    if (!tasks.every(t => t.deps.length === 0 && t.cache === undefined))
      return this.#inOrder(queue, () => this.#oneByOne(queue, tasks, origin, tag))
    // Encoded now, while the batches before it are written.
    const backoff = sharedBackoff(tasks)
    const rows = JSON.stringify(tasks.map(t => plainRow(t, backoff)))
    const fresh = !tasks.some(t => t.idChosen)
    return this.#inOrder(queue, async () => {
      let written: { n: number }[]
      try {
        written = await this.#db.rows<{ n: number }>(
          this.#plain,
          [queue, rows, origin, tag, backoff, fresh],
          'enqueue',
          true,
        )
      } catch (err) {
        // A batch of generated ids goes without the check for ids taken (a fifth of the
        // statement); one taken all the same (this very batch sent again after its reply was
        // lost) fails the statement, which then wrote nothing: the batch goes task by task.
        if (!fresh || (err as { code?: string }).code !== ID_TAKEN) throw err
        return this.#oneByOne(queue, tasks, origin, tag)
      }
      if (written[0]!.n === tasks.length) return tasks.map(() => 'ok' as const)
      // Some ids were taken: the whole batch again, task by task, with the same tag (the tasks
      // this call has just written answer 'ok').
      return this.#oneByOne(queue, tasks, origin, tag)
    })
  }

  /**
   * Runs `write` once the batches of `queue` sent before it have been answered. A tick of more
   * than 25 calls goes as two batches or more (batcher.ts), and two statements on two connections
   * run side by side: the line numbers and the `enqueued` events of one would interleave with the
   * other's, and a queue's calls would not run in the order they were made.
   */
  #inOrder<T>(queue: string, write: () => Promise<T>): Promise<T> {
    const before = this.#tails.get(queue)
    const run = before ? before.then(write) : write()
    // Settled either way; the last batch under way leaves the map when it settles.
    const settled = (): void => {
      if (this.#tails.get(queue) === tail) this.#tails.delete(queue)
    }
    const tail = run.then(settled, settled)
    this.#tails.set(queue, tail)
    return run
  }

  #oneByOne(queue: string, tasks: readonly NewTask[], origin: string | null, tag: string) {
    return this.#db.value<Answer[]>(`SELECT ${this.#schema}.enqueue($1, $2::jsonb, $3, $4) AS v`, [
      queue,
      JSON.stringify(tasks),
      origin,
      tag,
    ])
  }
}
