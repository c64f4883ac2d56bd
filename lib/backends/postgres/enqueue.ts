/**
 * The enqueue of a batch on postgres://. A batch of plain calls (no Deferred argument, no result
 * cache) is written by one statement: one INSERT … SELECT FROM json_to_recordset of the batch,
 * each task straight into its line (or the delayed set) in the batch's order, one inbox row for
 * all their `enqueued` events and one wake-up. (`backoff`, an object, is read as text and cast:
 * read as jsonb by json_to_recordset it cost the server 10 µs a task, most of the statement.) A
 * task whose id is taken (a live task: a duplicate; a finished one, replaced; or this very call
 * sent again after its reply was lost) sends its batch again through the `enqueue` function, task
 * by task (schema/002_tasks.sql), as every other batch goes. Each call carries a tag of its own
 * (`enqueue_tag`), by which the same call sent again finds the tasks it wrote: they answer 'ok'.
 */
import { nanoid } from 'nanoid'
import type { NewTask } from '../backend.js'
import type { PgPool } from './pool.js'

type Answer = 'ok' | 'duplicate'

/** The columns json_to_recordset reads from a NewTask (deps and cache are empty in a plain call). */
const COLUMNS = `id text, name text, payload text, "onError" text, "ignoreResult" boolean,
  "resultTimeout" bigint, heartrate bigint, attempts integer, backoff text, "runAt" bigint,
  timeout bigint, priority integer, metadata text, trace text`

/** The one statement of a plain batch: $1 queue, $2 the tasks (JSON), $3 origin, $4 tag. */
function plainSql(s: string): string {
  return `WITH q AS (
      SELECT ${s}.now_ms() AS now,
        coalesce((SELECT listing FROM ${s}.queues WHERE name = $1), true) AS listing,
        coalesce((SELECT events FROM ${s}.queues WHERE name = $1), true) AS events
    ), ins AS (
      INSERT INTO ${s}.tasks AS r (queue, id, name, state, payload, on_error, ignore_result,
        result_timeout, heartrate, attempts, backoff, run_at, timeout, priority, metadata, trace,
        created_at, listed, origin, enqueue_tag, due_at, ready_at, line_seq)
      SELECT $1, x.id, x.name, CASE WHEN x."runAt" > q.now THEN 'delayed' ELSE 'enqueued' END,
        x.payload, x."onError", x."ignoreResult", x."resultTimeout", x.heartrate, x.attempts,
        x.backoff::jsonb, x."runAt", x.timeout, x.priority, x.metadata, coalesce(x.trace, ''),
        q.now, q.listing, CASE WHEN x."ignoreResult" THEN NULL ELSE $3 END, $4,
        CASE WHEN x."runAt" > q.now THEN x."runAt" END,
        CASE WHEN x."runAt" > q.now THEN NULL ELSE q.now END, nextval('${s}.line_seq')
      FROM q, ROWS FROM (json_to_recordset($2::json) AS (${COLUMNS})) WITH ORDINALITY AS x
      ORDER BY x.ordinality
      ON CONFLICT (queue, id) DO NOTHING
      RETURNING r.id, r.name, r.created_at, r.line_seq
    ), logged AS (
      INSERT INTO ${s}.inbox (queue, body)
      SELECT $1, json_build_object('es', json_agg(json_build_object('type', 'enqueued',
        'id', ins.id, 'name', ins.name, 'time', ins.created_at) ORDER BY ins.line_seq))::jsonb
      FROM ins HAVING count(*) > 0 AND (SELECT events FROM q)
    )
    SELECT count(*)::integer AS n, ${s}.wake($1) AS woke FROM ins`
}

/** Enqueues batches of one schema's queues. */
export class BatchEnqueue {
  readonly #db: PgPool
  readonly #schema: string
  readonly #plain: string

  constructor(db: PgPool, schema: string) {
    this.#db = db
    this.#schema = schema
    this.#plain = plainSql(schema)
  }

  /** 'ok' or 'duplicate' per task, in order; `origin` is the instance outcomes go to. */
  async enqueue(
    queue: string,
    tasks: readonly NewTask[],
    origin: string | null,
  ): Promise<Answer[]> {
    const tag = nanoid()
    if (!tasks.every(t => t.deps.length === 0 && t.cache === undefined))
      return this.#oneByOne(queue, tasks, origin, tag)
    const rows = await this.#db.rows<{ n: number }>(
      this.#plain,
      [queue, JSON.stringify(tasks), origin, tag],
      'enqueue',
      true,
    )
    if (rows[0]!.n === tasks.length) return tasks.map(() => 'ok')
    // Some ids were taken: the whole batch again, task by task, with the same tag (the tasks this
    // call has just written answer 'ok').
    return this.#oneByOne(queue, tasks, origin, tag)
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
