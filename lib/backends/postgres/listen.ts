/**
 * The one LISTEN connection of a postgres:// backend: it hears work wake-ups (`<schema>.work`,
 * payload the queue), control messages (`<schema>.control`) and the outcomes and progress of this
 * instance's own tasks (`<schema>.o.<clientId>`). A lost connection is made again (with backoff);
 * what may have been missed meanwhile is reported as a gap.
 */
import type pg from 'pg'
import { pg as nodePostgres } from './pg.js'
import { dropped, refusal, unreachable, unreachableError } from './pool.js'

/**
 * Longest pause between two attempts to make the connection again: a restarted server is heard
 * within this of accepting connections, and an absent one costs a refused connect per period.
 */
const MAX_BACKOFF_MS = 500

/** What the listener hands on. */
export interface ListenHandlers {
  work(queue: string): void
  control(queue: string, message: unknown): void
  outcome(queue: string, id: string, what: string): void
  /**
   * Tasks an enqueue handed to `worker`, a parked worker of this instance (`rows`: reserved rows as
   * the exchange replies them), or null when they did not fit the notification (read them).
   */
  handover(queue: string, worker: string, rows: unknown[] | null): void
  /**
   * The connection was lost and is back, `lostMs` after it was lost: notifications may have been
   * missed meanwhile.
   */
  gap(lostMs: number): void
}

export class Listener {
  readonly #config: pg.ClientConfig
  readonly #channels: string[]
  readonly #handlers: ListenHandlers
  #client: pg.Client | undefined
  /** The connection being made (connected or not, its LISTENs not all answered yet). */
  #making: pg.Client | undefined
  #ready: Promise<void> | undefined
  #closed = false
  #retry: NodeJS.Timeout | undefined
  /** When the connection was last lost (Date.now()). */
  #lostAt = 0

  readonly #url: string
  /** The key of the session lock that says this connection listens (with its pid). */
  readonly #lock: string

  constructor(
    url: string,
    config: pg.ClientConfig,
    schema: string,
    clientId: string,
    handlers: ListenHandlers,
  ) {
    this.#url = url
    this.#config = config
    this.#handlers = handlers
    this.#channels = [`${schema}.work`, `${schema}.control`, `${schema}.o.${clientId}`]
    this.#lock = `${schema}.listen`
  }

  /**
   * The server process of the listening connection while it is up (`pg_backend_pid()` on it): a
   * park names it, so that no enqueue hands work to a process whose connection is gone. The
   * connection holds a session advisory lock on (`hashtext('<schema>.listen')`, this pid) for as
   * long as it lives, which is how an enqueue knows it is still there.
   */
  get pid(): number | undefined {
    // (node-postgres sets it from the server's BackendKeyData; its types leave it out.)
    return (this.#client as { processID?: number | null } | undefined)?.processID ?? undefined
  }

  /** Resolves once listening (the first connection; later ones reconnect by themselves). */
  ready(): Promise<void> {
    this.#ready ??= this.#connect().catch((err: unknown) => {
      this.#ready = undefined
      // A server that refuses, or accepts and drops the connection (shutting down, starting up,
      // a proxy with nothing behind it), is one this process cannot reach: the same clear error.
      if (unreachable(err) || dropped(err)) throw unreachableError(this.#url, err)
      throw refusal(this.#url, err) ?? err
    })
    return this.#ready
  }

  /**
   * Makes the connection and listens. Connected, until its LISTENs are answered, it is not
   * `#client` yet but `#making`: a close meanwhile ends it (it stayed open for good, holding a
   * server backend and the process, when a close came while a LISTEN was unanswered).
   */
  async #connect(): Promise<void> {
    const client = new (nodePostgres().Client)(this.#config)
    client.on('error', () => this.#lost(client))
    client.on('end', () => this.#lost(client))
    client.on('notification', n => this.#heard(n.channel, n.payload ?? ''))
    await client.connect()
    // From here a close ends it (ended while it connects, node-postgres never settled `connect`).
    this.#making = client
    try {
      // Held while this connection lives: an enqueue hands work to a park naming this connection's
      // server process only while it cannot take this lock (schema/023_park_lock.sql).
      await client.query('SELECT pg_advisory_lock(hashtext($1), pg_backend_pid())', [this.#lock])
      for (const c of this.#channels) {
        if (this.#closed) break
        await client.query(`LISTEN "${c}"`)
      }
    } catch (err) {
      // Ended (it failed, or a close ended it): nothing of it is left open.
      void client.end().catch(() => undefined)
      throw err
    } finally {
      if (this.#making === client) this.#making = undefined
    }
    if (this.#closed) {
      await client.end().catch(() => undefined)
      return
    }
    this.#client = client
  }

  #heard(channel: string, payload: string): void {
    try {
      if (channel === this.#channels[0]) this.#handlers.work(payload)
      else if (channel === this.#channels[1]) {
        const { q, m } = JSON.parse(payload) as { q: string; m: unknown }
        this.#handlers.control(q, m)
      } else if (payload.charAt(0) === '{') {
        const [q, worker, rows] = (JSON.parse(payload) as { h: [string, string, unknown[] | null] })
          .h
        this.#handlers.handover(q, worker, rows)
      } else {
        const [q, id, what] = JSON.parse(payload) as [string, string, string]
        this.#handlers.outcome(q, id, what)
      }
    } catch {
      // Not a message worq wrote: ignore it.
    }
  }

  #lost(client: pg.Client): void {
    if (this.#client !== client) return
    this.#client = undefined
    this.#lostAt = Date.now()
    client.removeAllListeners('notification')
    client.end().catch(() => undefined)
    if (!this.#closed) this.#reconnect(50)
  }

  #reconnect(ms: number): void {
    this.#retry = setTimeout(() => {
      this.#connect().then(
        () => {
          if (!this.#closed) this.#handlers.gap(Date.now() - this.#lostAt)
        },
        () => {
          if (!this.#closed) this.#reconnect(Math.min(ms * 2, MAX_BACKOFF_MS))
        },
      )
    }, ms)
    this.#retry.unref()
  }

  /** The sync query under way, and the one that follows it (shared by the calls made meanwhile). */
  #syncing: Promise<void> | undefined
  #nextSync: Promise<void> | undefined

  /**
   * Resolves once every notification committed before this call has been handed on: the server
   * sends pending notifications ahead of a query's answer on the listening connection. One query
   * at a time on that connection (node-postgres deprecates, and warns about, a query sent while
   * another runs): a call made while one is under way, sent before it, waits for the next, which
   * serves every call made meanwhile.
   */
  sync(): Promise<void> {
    if (!this.#syncing) {
      this.#syncing = (this.#client?.query('SELECT 1') ?? Promise.resolve())
        .then(
          () => undefined,
          () => undefined,
        )
        .finally(() => (this.#syncing = undefined))
      return this.#syncing
    }
    return (this.#nextSync ??= this.#syncing.then(() => {
      this.#nextSync = undefined
      return this.sync()
    }))
  }

  async close(): Promise<void> {
    this.#closed = true
    clearTimeout(this.#retry)
    const c = this.#client
    this.#client = undefined
    const making = this.#making
    this.#making = undefined
    await Promise.all([c?.end().catch(() => undefined), making?.end().catch(() => undefined)])
  }
}
