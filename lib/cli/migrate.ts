/**
 * `worq migrate <url>`: creates or upgrades worq's schema in a PostgreSQL database now, for those
 * who migrate explicitly (a deploy step) rather than on first use. Safe to run from several
 * processes at once.
 */
import { Command } from 'commander'
import { parseUrl } from '../backends/index.js'
import { pg } from '../backends/postgres/pg.js'
import { grantUse, migrate, SCHEMA_VERSION } from '../backends/postgres/migrate.js'
import { parsePostgresUrl } from '../backends/postgres/url.js'
import { BackendUnreachable } from '../errors.js'
import { CliExit, EXIT } from './exit-codes.js'

/** Migrates the database at `url`, then lets each of `grants` (role names) use it; resolves with the exit code. */
export async function runMigrate(url: string, grants: readonly string[] = []): Promise<number> {
  const scheme = parseUrl(url)
  if (scheme !== 'postgres:' && scheme !== 'postgresql:')
    throw new CliExit(EXIT.USAGE, `migrate needs a postgres:// URL; ${scheme}// keeps no schema`)
  const { connection, schema } = parsePostgresUrl(url)
  const client = new (pg().Client)({ ...connection, connectionTimeoutMillis: 5_000 })
  client.on('error', () => undefined)
  try {
    await client.connect()
  } catch (err) {
    throw new BackendUnreachable(url, (err as Error).message, { cause: err })
  }
  try {
    const m = await migrate(client, schema)
    process.stdout.write(
      m.from === m.to
        ? `schema ${schema} is at version ${m.to} (current)\n`
        : `schema ${schema} migrated from version ${m.from} to ${m.to}\n`,
    )
    for (const role of grants) {
      await grantUse(client, schema, role)
      process.stdout.write(`role ${role} may use schema ${schema}\n`)
    }
    return EXIT.OK
  } finally {
    await client.end().catch(() => undefined)
  }
}

/** The `migrate` command. */
export function migrateCommand(run: (code: Promise<number>) => void): Command {
  return new Command('migrate')
    .description(
      `Create or upgrade worq's tables and functions in a PostgreSQL database (schema version ${SCHEMA_VERSION}).`,
    )
    .argument('<url>', 'postgres:// URL, e.g. postgres://user@127.0.0.1:5432/app?schema=worq')
    .option(
      '--grant <role...>',
      "then let these roles use the schema (USAGE, and SELECT, INSERT, UPDATE, DELETE on its tables): an application's role that may not create it",
    )
    .addHelpText(
      'after',
      '\nExit codes: 0 migrated or already current, 1 an error (unreachable, a schema newer than this worq), 2 usage.',
    )
    .action((url: string, options: { grant?: string[] }) =>
      run(runMigrate(url, options.grant ?? [])),
    )
}
