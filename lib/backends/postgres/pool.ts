/**
 * The connection pool of a postgres:// backend: node-postgres's Pool, the schema migrated before
 * the first query, a statement that lost a deadlock (two queues' cascades crossing) run again, and
 * a server that is away (restarting, crashed, refusing connections, dropping them) waited for:
 * the statement is sent again, with backoff, until it answers or `patienceMs` (the backend's
 * `connectTimeoutMs`) has passed since the operation began, then fails with BackendUnreachable.
 * A statement the server cancelled for its `statement_timeout` or `lock_timeout` fails at once
 * with StatementTimeout.
 */
import { createHash } from 'node:crypto'
import type pg from 'pg'
import { pg as nodePostgres } from './pg.js'
import { AuthFailed, BackendUnreachable, BadUrl, StatementTimeout } from '../../errors.js'

/** What the `tx` option accepts: a node-postgres client (or anything with its `query`). */
export interface Queryable {
  query(text: string, values?: unknown[]): Promise<{ rows: unknown[] }>
}

/** Codes of errors that say the server could not be reached. */
const UNREACHABLE = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EHOSTUNREACH', 'ETIMEDOUT', 'EAI_AGAIN'])

/** SQLSTATEs after which the statement is simply run again. */
const RETRY = new Set(['40P01', '40001'])

/**
 * A connection that was dropped (terminated by an administrator, a server restart, a network cut):
 * its statement did not commit, except in the instant between the commit and its reply, so it is
 * sent again on another connection. (In that instant an enqueue sent again answers `duplicate`:
 * docs/postgres.md.)
 */
export function dropped(err: unknown): boolean {
  const e = err as { code?: string; message?: string }
  return (
    e.code === '57P01' ||
    e.code === '57P02' ||
    e.code === '57P03' ||
    (e.code?.startsWith('08') ?? false) ||
    e.code === 'ECONNRESET' ||
    e.code === 'EPIPE' ||
    /Connection terminated|Client has encountered a connection error/i.test(e.message ?? '')
  )
}

/**
 * SQLSTATE 53300 (too_many_connections): the server, or the role's CONNECTION LIMIT, has no
 * connection left for this process. Waited for like a server that is away (other clients leave).
 */
const NO_SLOT = '53300'

/** True for an error that says the server could not be reached, or took no more connections. */
export function unreachable(err: unknown): boolean {
  const e = err as { code?: string; message?: string }
  return (
    (e.code !== undefined && (UNREACHABLE.has(e.code) || e.code === NO_SLOT)) ||
    /timeout exceeded when trying to connect|Connection terminated due to connection timeout/i.test(
      e.message ?? '',
    )
  )
}

/** The BackendUnreachable of `err` (one that `unreachable` accepts), saying what to change. */
export function unreachableError(url: string, err: unknown): BackendUnreachable {
  const e = err as { code?: string; message?: string }
  const detail =
    e.code === NO_SLOT
      ? `${e.message ?? 'too many connections'} (SQLSTATE 53300): the server has no connection left for this process; raise max_connections or the role's CONNECTION LIMIT, or lower ?pool= (worq opens up to ?pool= connections and one more to listen)`
      : (e.message ?? String(err))
  return new BackendUnreachable(url, detail, { cause: err })
}

/**
 * The AuthFailed of `err` when the server refused the connection's role (SQLSTATE class 28: a role
 * that does not exist, a wrong password, no `pg_hba.conf` entry for it), else undefined.
 */
function authFailed(url: string, err: unknown): AuthFailed | undefined {
  const e = err as { code?: string; message?: string }
  if (typeof e?.code !== 'string' || !e.code.startsWith('28')) return undefined
  return new AuthFailed(
    url,
    `${e.message ?? 'authentication failed'}, SQLSTATE ${e.code}`,
    "check the user and password in the URL (postgres://user:password@host:port/db), or create that role (CREATE ROLE <name> LOGIN PASSWORD …) and admit it in the server's pg_hba.conf",
    { cause: err },
  )
}

/**
 * The coded error of a connection the server refused for what the URL says: AuthFailed for its
 * role (authFailed()), BadUrl for a database that does not exist (SQLSTATE 3D000); else undefined.
 */
export function refusal(url: string, err: unknown): AuthFailed | BadUrl | undefined {
  const e = err as { code?: string; message?: string }
  if (e?.code === '3D000')
    return new BadUrl(
      url,
      `${e.message ?? 'the database does not exist'} (SQLSTATE 3D000): create it (CREATE DATABASE <name>) or name one the server has in the URL's path`,
    )
  return authFailed(url, err)
}

/** The statement timeout's error, when `err` is a statement the server cancelled for one. */
export function timedOut(err: unknown, statement: string): StatementTimeout | undefined {
  const e = err as { code?: string; message?: string }
  const setting =
    e.code === '57014' && /statement timeout/i.test(e.message ?? '')
      ? 'statement_timeout'
      : e.code === '55P03' && /lock timeout/i.test(e.message ?? '')
        ? 'lock_timeout'
        : undefined
  return setting && new StatementTimeout(statement, setting, { cause: err })
}

/** The operation a statement runs, for messages: `enqueue`, `exchange`, or its first words. */
function operationOf(text: string): string {
  return /^SELECT [a-z_0-9]+\.([a-z_]+)\(/.exec(text)?.[1] ?? text.replace(/\s+/g, ' ').slice(0, 40)
}

/** Longest pause between two tries of a statement whose server is away. */
const MAX_BACKOFF_MS = 250

/** The name a prepared statement gets: from its text, so that one name never has two texts. */
const names = new Map<string, string>()
function statementName(text: string): string {
  let name = names.get(text)
  if (name === undefined) {
    name = `worq_${createHash('sha1').update(text).digest('hex').slice(0, 20)}`
    names.set(text, name)
  }
  return name
}

export class PgPool {
  readonly #url: string
  readonly #prepare: boolean
  readonly #pool: pg.Pool
  readonly #setup: (client: pg.PoolClient) => Promise<unknown>
  readonly #patienceMs: number
  #ready: Promise<void> | undefined

  /**
   * `prepare`: statements marked `prepared` are named prepared statements (parsed and planned
   * once per connection).
   */
  constructor(
    url: string,
    config: pg.PoolConfig,
    setup: (client: pg.PoolClient) => Promise<unknown>,
    prepare = true,
  ) {
    this.#prepare = prepare
    this.#url = url
    this.#patienceMs = config.connectionTimeoutMillis ?? 5_000
    this.#pool = new (nodePostgres().Pool)(config)
    // An idle connection that fails is dropped by the pool; the next query makes a new one.
    this.#pool.on('error', () => undefined)
    this.#setup = setup
  }

  /** Resolves once the schema is in place (migrating it on first use). */
  ready(): Promise<void> {
    this.#ready ??= this.#patiently('migrate', () =>
      this.#connect(async client => {
        await this.#setup(client)
      }),
    ).catch(err => {
      this.#ready = undefined
      throw err
    })
    return this.#ready
  }

  /**
   * Runs `fn` on a connection checked out of the pool. node-postgres's pool listens for errors
   * only on the connections it holds idle: one checked out that the network or the server drops
   * emits 'error' with nobody listening, which throws, uncaught, and ends the process (a migration
   * cut while it waited for its lock did). Its queries fail all the same: the error is heard here,
   * and the connection is discarded when it comes back.
   */
  async #connect<T>(fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    const client = await this.#pool.connect()
    let failed: Error | undefined
    const heard = (err: Error) => (failed ??= err)
    client.on('error', heard)
    try {
      return await fn(client)
    } finally {
      client.off('error', heard)
      client.release(failed)
    }
  }

  /**
   * Runs `fn` until it answers: again after a deadlock (up to 5 times), again with backoff while
   * the server is away (until `patienceMs` has passed: then BackendUnreachable); a statement or
   * lock timeout is a StatementTimeout. `fn` is told whether an earlier try's connection was
   * dropped: that try may have committed (in the instant between its commit and its reply).
   */
  async #patiently<T>(operation: string, fn: (resent: boolean) => Promise<T>): Promise<T> {
    const deadline = Date.now() + this.#patienceMs
    let resent = false
    for (let attempt = 1; ; attempt++) {
      try {
        return await fn(resent)
      } catch (err) {
        const code = (err as { code?: string }).code
        if (code !== undefined && RETRY.has(code) && attempt < 5) continue
        const timeout = timedOut(err, operation)
        if (timeout) throw timeout
        const refused = refusal(this.#url, err)
        if (refused) throw refused
        if (!dropped(err) && !unreachable(err)) throw err
        if (dropped(err)) resent = true
        const left = deadline - Date.now()
        if (left <= 0) throw unreachableError(this.#url, err)
        await new Promise(r => setTimeout(r, Math.min(25 * 2 ** attempt, MAX_BACKOFF_MS, left)))
      }
    }
  }

  /**
   * The rows of one statement (`operation` names it in a StatementTimeout). `prepared`: a
   * statement of fixed text that runs often, sent as a named prepared statement (unless the URL
   * says `prepare=false`): its parsing and planning, about half of a small statement's time, are
   * done once per connection.
   */
  async rows<T>(
    text: string,
    values: unknown[] = [],
    operation?: string,
    prepared = false,
  ): Promise<T[]> {
    await this.ready()
    const query: pg.QueryConfig =
      prepared && this.#prepare ? { name: statementName(text), text, values } : { text, values }
    return this.#patiently(
      operation ?? operationOf(text),
      async () => (await this.#pool.query(query)).rows as T[],
    )
  }

  /**
   * Column `v` of the first row of a prepared statement whose tries after a dropped connection
   * differ from its first: `values(resent)` gives each try's parameters, `resent` true once an
   * earlier try's connection was dropped (that try may have committed; the exchange then answers
   * as the committed try did: docs/postgres.md, "A server that is away").
   */
  async resendable<T>(text: string, values: (resent: boolean) => unknown[]): Promise<T> {
    await this.ready()
    const name = this.#prepare ? statementName(text) : undefined
    return this.#patiently(operationOf(text), async resent => {
      const query: pg.QueryConfig = { name, text, values: values(resent) }
      return ((await this.#pool.query(query)).rows[0] as { v: T }).v
    })
  }

  /** Column `v` of the first row (`prepared`: as for `rows`). */
  async value<T>(text: string, values: unknown[] = [], prepared = false): Promise<T> {
    const rows = await this.rows<{ v: T }>(text, values, undefined, prepared)
    return rows[0]!.v
  }

  async close(): Promise<void> {
    await this.#pool.end().catch(() => undefined)
  }
}
