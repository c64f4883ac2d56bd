/**
 * Creates and upgrades worq's schema in a PostgreSQL database: the tables and the plpgsql
 * functions of schema/*.sql, versioned in `<schema>.migrations`. Runs under a session advisory
 * lock, so any number of processes may migrate at once; the first does the work, the others find
 * it done. A database whose schema is newer than this code is refused (SchemaTooNew).
 */
import { readFileSync } from 'node:fs'
import type { ClientBase } from 'pg'
import { MigrationDenied, SchemaTooNew } from '../../errors.js'

/** The schema version this code writes and reads. */
export const SCHEMA_VERSION = 23

/** The files of each version, applied in order in one transaction. */
const VERSIONS: Record<number, string[]> = {
  1: ['001_tables', '002_tasks', '003_work', '004_shaping', '005_observe'],
  2: ['006_exchange'],
  3: ['007_finish'],
  4: ['008_event_sets'],
  5: ['009_event_runs'],
  6: ['010_fold_apart'],
  7: ['011_enqueued_lists'],
  8: ['012_reserved_rows'],
  9: ['013_inbox_text'],
  10: ['014_fills'],
  11: ['015_handover'],
  12: ['016_purge_steps'],
  13: ['017_purge_sets'],
  14: ['018_lone_handover', '018_lone_handover_end'],
  15: ['019_rate_margin'],
  16: ['020_released_events'],
  17: ['021_purge_chains'],
  18: ['022_schedule_gen'],
  19: ['023_park_lock'],
  20: ['024_resend_times'],
  21: ['025_run_times_once'],
  22: ['026_exchange_again', '026_exchange_again_end'],
  23: ['027_fold_unreadable', '027_limits_readable'],
}

/** The SQL of one file, with the schema's name in place of `worq.` and `@schema@`. */
export function schemaSql(file: string, schema: string): string {
  const text = readFileSync(new URL(`./schema/${file}.sql`, import.meta.url), 'utf8')
  return text.replace(/\bworq\./g, `${schema}.`).replace(/@schema@/g, schema)
}

/** What a migration did: the version found and the version left. */
export interface Migrated {
  schema: string
  from: number
  to: number
}

/**
 * The version `schema` is at, read without writing anything (0 when it has no migrations table):
 * a role that may use worq's tables but not create them starts on a schema migrated by another.
 */
async function versionOf(client: ClientBase, schema: string): Promise<number> {
  const { rows } = await client.query<{ t: string | null }>('SELECT to_regclass($1)::text AS t', [
    `${schema}.migrations`,
  ])
  if (rows[0]?.t == null) return 0
  const max = await client.query<{ v: number }>(
    `SELECT coalesce(max(version), 0)::integer AS v FROM ${schema}.migrations`,
  )
  return max.rows[0]!.v
}

/** SQLSTATE 42501 (insufficient_privilege). */
const DENIED = '42501'

/**
 * Brings `schema` to {@link SCHEMA_VERSION} on `client` (a connection of its own: it takes a
 * session advisory lock). Safe to run concurrently and again. A schema already at this version is
 * only read (no lock, no DDL). A role that may not create or change the schema gets
 * MigrationDenied, which says what to run and grant.
 */
export async function migrate(client: ClientBase, schema: string): Promise<Migrated> {
  try {
    const current = await versionOf(client, schema)
    if (current === SCHEMA_VERSION) return { schema, from: current, to: current }
    if (current > SCHEMA_VERSION) throw new SchemaTooNew(schema, current, SCHEMA_VERSION)
    return await migrateLocked(client, schema)
  } catch (err) {
    if ((err as { code?: string }).code === DENIED) throw new MigrationDenied(schema, err)
    throw err
  }
}

/** The migration itself, under the schema's advisory lock. */
async function migrateLocked(client: ClientBase, schema: string): Promise<Migrated> {
  const lock = `worq.migrate:${schema}`
  await client.query('SELECT pg_advisory_lock(hashtext($1))', [lock])
  try {
    await client.query(`CREATE SCHEMA IF NOT EXISTS ${schema}`)
    await client.query(
      `CREATE TABLE IF NOT EXISTS ${schema}.migrations (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())`,
    )
    const { rows } = await client.query<{ v: number }>(
      `SELECT coalesce(max(version), 0)::integer AS v FROM ${schema}.migrations`,
    )
    const from = rows[0]!.v
    if (from > SCHEMA_VERSION) throw new SchemaTooNew(schema, from, SCHEMA_VERSION)
    for (let v = from + 1; v <= SCHEMA_VERSION; v++) {
      await client.query('BEGIN')
      try {
        for (const file of VERSIONS[v]!) await client.query(schemaSql(file, schema))
        await client.query(`INSERT INTO ${schema}.migrations (version) VALUES ($1)`, [v])
        await client.query('COMMIT')
      } catch (err) {
        await client.query('ROLLBACK').catch(() => undefined)
        throw err
      }
    }
    return { schema, from, to: SCHEMA_VERSION }
  } finally {
    await client.query('SELECT pg_advisory_unlock(hashtext($1))', [lock]).catch(() => undefined)
  }
}

/**
 * Lets `role` use worq's schema without owning it: USAGE on the schema, SELECT, INSERT, UPDATE and
 * DELETE on its tables, its sequences, and EXECUTE on its functions. For a deployment where a
 * migrating role (`worq migrate <url> --grant <role>`) and the application's role differ; run it
 * again after an upgrade that adds tables.
 */
export async function grantUse(client: ClientBase, schema: string, role: string): Promise<void> {
  const r = `"${role.replace(/"/g, '""')}"`
  await client.query(`GRANT USAGE ON SCHEMA ${schema} TO ${r}`)
  await client.query(
    `GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA ${schema} TO ${r}`,
  )
  await client.query(`GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA ${schema} TO ${r}`)
  await client.query(`GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA ${schema} TO ${r}`)
}
