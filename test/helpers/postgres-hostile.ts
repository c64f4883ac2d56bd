/**
 * The rig of the PostgreSQL hostile-input tests (test/chaos/postgres-hostile.test.ts and
 * postgres-stored.test.ts): a queue on the run's database with a worker pool exposing echo and
 * len, a raw client, and a trigger the rig installs on the task table that records every row that
 * turns `done`, so that a test can tell that no task was ended twice.
 */
import { expect } from 'chai'
import pg from 'pg'
import { task, WorkerPool, type Deferred } from '../../lib/index.js'
import { echoBroker, interleave, outcomesOf, settledWithin } from './hostile.js'
import { postgresUrl } from './postgres.js'
import { uniqueQueue } from './util.js'

/** A queue on a fresh schema's database with a worker exposing echo and len, and a raw client. */
export async function rig(maxPayloadBytes = 1 << 20) {
  const url = await postgresUrl()
  const db = new pg.Client({ connectionString: url })
  await db.connect()
  const queue = uniqueQueue('pgfuzz')
  const broker = echoBroker(url, queue, maxPayloadBytes)
  await broker.size() // the schema exists before the trigger goes on its table
  await db.query(
    `CREATE TABLE IF NOT EXISTS public.hostile_ends (queue text, id text, outcome text)`,
  )
  await db.query(`CREATE OR REPLACE FUNCTION public.hostile_end() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
      INSERT INTO public.hostile_ends VALUES (NEW.queue, NEW.id, NEW.outcome);
      RETURN NEW;
    END $$`)
  await db.query(`CREATE OR REPLACE TRIGGER hostile_end AFTER UPDATE OF state ON worq.tasks
    FOR EACH ROW WHEN (NEW.state = 'done' AND OLD.state <> 'done')
    EXECUTE FUNCTION public.hostile_end()`)
  const pool = new WorkerPool(broker, { concurrency: 8, sweepInterval: 100 })
  const errors: string[] = []
  pool.on('pool:error', e => errors.push(e.message))
  const echo = task(broker.queue().echo, { heartrate: 100 })

  /**
   * Enqueues a call of echo per entry (its id the entry's key) and rewrites the row's `column` to
   * the entry's value, good calls interleaved; returns the good Deferreds. The rows are rewritten
   * before a worker takes them: the pool is not started yet, or the queue is paused.
   */
  async function inject(
    rows: Record<string, string>,
    column: string,
  ): Promise<Array<Deferred<unknown>>> {
    return interleave(
      rows,
      async (id, value) => {
        await task(broker.queue().echo, { id, heartrate: 100 })('placeholder')
        const changed = await db.query(
          `UPDATE worq.tasks SET ${column} = $3 WHERE queue = $1 AND id = $2`,
          [queue, id, value],
        )
        expect(changed.rowCount, `row ${id}`).to.equal(1)
      },
      arg => echo(arg) as Promise<Deferred<unknown>>,
    )
  }

  /** Resolves once no row of `ids` is live; bounded. */
  const settled = (ids: string[], ms?: number) =>
    settledWithin(async () => {
      const { rows } = await db.query<{ id: string }>(
        `SELECT id FROM worq.tasks WHERE queue = $1 AND id = ANY ($2) AND state <> 'done'`,
        [queue, ids],
      )
      return rows.map(row => row.id)
    }, ms)

  /** Ids of this queue ended more than once (the trigger's records). */
  async function endedTwice(): Promise<string[]> {
    const { rows } = await db.query<{ id: string }>(
      `SELECT id FROM public.hostile_ends WHERE queue = $1 GROUP BY id HAVING count(*) > 1`,
      [queue],
    )
    return rows.map(r => r.id)
  }

  return {
    queue,
    broker,
    db,
    pool,
    errors,
    inject,
    settled,
    outcomes: (ids: string[]) => outcomesOf(broker, queue, ids),
    endedTwice,
    async close() {
      await pool.stop({ timeout: 1000 })
      await broker.close()
      await db.query(`DROP TRIGGER IF EXISTS hostile_end ON worq.tasks`)
      await db.end()
    },
  }
}
