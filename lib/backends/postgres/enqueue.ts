/**
 * The enqueue of a batch on postgres://. A batch of plain calls (no Deferred argument, no result
 * cache) is written by one statement: one INSERT … SELECT FROM json_to_recordset of the batch,
 * each task straight into its line (or the delayed set) in the batch's order, one inbox row for
 * all their `enqueued` events and one wake-up. (`backoff`, an object, is read as text and cast:
 * read as jsonb by json_to_recordset it cost the server 10 µs a task, most of the statement; a
 * backoff shared by the whole batch is sent and cast once.) The rows carry only what differs from
 * the defaults, under one-letter keys (`plainRow`). A task whose id is taken (a live task: a
 * duplicate; a finished one, replaced; or this very call sent again after its reply was lost)
 * sends its batch again through the `enqueue` function, task by task (schema/002_tasks.sql), as
 * every other batch goes. Each call carries a tag of its own (`enqueue_tag`), by which the same
 * call sent again finds the tasks it wrote: they answer 'ok'.
 */
import { nanoid } from 'nanoid'
import type { NewTask } from '../backend.js'
import type { PgPool } from './pool.js'

type Answer = 'ok' | 'duplicate'

/**
 * The columns json_to_recordset reads from a plain task, under one-letter keys; a key left out is
 * the field's default (`plainRow`). The server parses the whole batch as JSON, so what it is not
 * sent it does not parse: an ordinary call's row is about a third of its NewTask's JSON.
 */
const COLUMNS = `i text, n text, p text, o text, g boolean, r bigint, h bigint, a integer,
  b text, u bigint, t bigint, y integer, m text, c text`

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
 * $5 the batch's backoff (JSON; null when each row has its own): cast to jsonb once, not per row.
 *
 * Handover (schema version 11, docs/postgres.md): when the queue is neither paused nor limited,
 * nothing waits in its line, and workers are parked (`parks`, by processes still connected), the
 * batch's first tasks due now (by priority, then in the batch's order) go straight into the
 * parked workers' hands, as many as each has slots: written as processing under a token of the
 * worker's (`<worker>:h<n>`), their `started` events after the batch's `enqueued` ones, and each
 * worker's process notified on its channel with its tasks (`{"h":[queue, worker, rows]}`; rows
 * null when they would not fit a notification: the process reads them, `handed()`). The rest
 * joins the line, and the queue's workers are woken only for that rest.
 */
function plainSql(s: string): string {
  return `WITH q AS (
      SELECT ${s}.now_ms() AS now, $5::jsonb AS backoff,
        coalesce((SELECT listing FROM ${s}.queues WHERE name = $1), true) AS listing,
        coalesce((SELECT events FROM ${s}.queues WHERE name = $1), true) AS events,
        EXISTS (SELECT 1 FROM ${s}.parks WHERE queue = $1)
          AND NOT coalesce((SELECT paused FROM ${s}.queues WHERE name = $1), false)
          AND NOT EXISTS (SELECT 1 FROM ${s}.limits WHERE queue = $1)
          AND NOT EXISTS (SELECT 1 FROM ${s}.tasks WHERE queue = $1 AND state = 'enqueued')
          AS hand
    ), x AS (
      SELECT * FROM ROWS FROM (json_to_recordset($2::json) AS (${COLUMNS})) WITH ORDINALITY AS x
    ), due AS (
      SELECT x.ordinality AS o, row_number() OVER (ORDER BY coalesce(x.y, 0), x.ordinality) AS rn
      FROM x, q WHERE q.hand AND NOT coalesce(x.u > q.now, false)
    ), free AS (
      SELECT p.worker, p.origin, p.slots FROM ${s}.parks p, q
      WHERE q.hand AND p.queue = $1 AND p.until > q.now
        AND EXISTS (SELECT 1 FROM pg_stat_get_activity(p.pid))
      FOR UPDATE OF p SKIP LOCKED
    ), ranged AS (
      SELECT worker, origin, sum(slots) OVER (ORDER BY worker) - slots AS lo,
        sum(slots) OVER (ORDER BY worker) AS hi
      FROM free
    ), taken AS (
      DELETE FROM ${s}.parks p USING ranged r
      WHERE p.queue = $1 AND p.worker = r.worker AND r.lo < (SELECT count(*) FROM due)
      RETURNING r.worker, r.origin, r.lo, r.hi
    ), give AS (
      SELECT due.o, taken.worker FROM due JOIN taken ON due.rn > taken.lo AND due.rn <= taken.hi
    ), ins AS (
      INSERT INTO ${s}.tasks AS r (queue, id, name, state, payload, on_error, ignore_result,
        result_timeout, heartrate, attempts, backoff, run_at, timeout, priority, metadata, trace,
        created_at, listed, origin, enqueue_tag, due_at, ready_at, line_seq, token, lease_until,
        started_at, worker_id, attempt)
      SELECT $1, x.i, x.n,
        CASE WHEN x.u > q.now THEN 'delayed' WHEN g.worker IS NOT NULL THEN 'processing'
          ELSE 'enqueued' END,
        x.p, coalesce(x.o, 'fail'), coalesce(x.g, false), x.r, x.h, x.a,
        coalesce(x.b::jsonb, q.backoff), coalesce(x.u, 0), coalesce(x.t, 0), coalesce(x.y, 0),
        coalesce(x.m, ''), coalesce(x.c, ''),
        q.now, q.listing, CASE WHEN x.g THEN NULL ELSE $3 END, $4,
        CASE WHEN x.u > q.now THEN x.u END,
        CASE WHEN x.u > q.now THEN NULL ELSE q.now END, nextval('${s}.line_seq'),
        CASE WHEN g.worker IS NOT NULL THEN g.worker || ':h' || nextval('${s}.token_seq') END,
        CASE WHEN g.worker IS NOT NULL THEN q.now + ${s}.lease_ms(x.h) END,
        CASE WHEN g.worker IS NOT NULL THEN q.now END, g.worker,
        CASE WHEN g.worker IS NOT NULL THEN 1 ELSE 0 END
      FROM q, x LEFT JOIN give g ON g.o = x.ordinality
      ORDER BY x.ordinality
      ON CONFLICT (queue, id) DO NOTHING
      RETURNING r
    ), logged AS (
      INSERT INTO ${s}.inbox (queue, body)
      SELECT $1, CASE WHEN count(*) FILTER (WHERE (ins.r).worker_id IS NOT NULL) = 0
        THEN json_build_object('en', json_build_array(min((ins.r).created_at),
          to_json(array_agg((ins.r).id ORDER BY (ins.r).line_seq)),
          to_json(array_agg((ins.r).name ORDER BY (ins.r).line_seq))))
        ELSE json_build_object('es', (SELECT json_agg(e.v ORDER BY e.k, e.s) FROM (
            SELECT 0 AS k, (i.r).line_seq AS s, json_build_object('type', 'enqueued',
              'id', (i.r).id, 'name', (i.r).name, 'time', (i.r).created_at) AS v FROM ins i
            UNION ALL
            SELECT 1, (i.r).line_seq, json_build_object('type', 'started', 'id', (i.r).id,
              'name', (i.r).name, 'time', (i.r).started_at, 'attempt', 1,
              'workerId', (i.r).worker_id) FROM ins i WHERE (i.r).worker_id IS NOT NULL
          ) e)) END
      FROM ins HAVING count(*) > 0 AND (SELECT events FROM q)
    ), told AS (
      SELECT count(pg_notify('${s}.o.' || t.origin, json_build_object('h', json_build_array($1,
          t.worker, CASE WHEN octet_length(h.rows::text) < 7800 THEN h.rows END))::text)) AS n
      FROM taken t JOIN LATERAL (
        SELECT json_agg(${s}.handed_row(i.r) ORDER BY (i.r).line_seq) AS rows
        FROM ins i WHERE (i.r).worker_id = t.worker
      ) h ON h.rows IS NOT NULL
    )
    SELECT count(*)::integer AS n,
      CASE WHEN count(*) FILTER (WHERE (ins.r).worker_id IS NULL) > 0 THEN ${s}.wake($1) END
        AS woke,
      (SELECT n FROM told) AS told
    FROM ins`
}

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
    return this.#inOrder(queue, async () => {
      const written = await this.#db.rows<{ n: number }>(
        this.#plain,
        [queue, rows, origin, tag, backoff],
        'enqueue',
        true,
      )
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
