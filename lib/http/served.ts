/**
 * What one handler serves: its brokers by queue name and its checked options, with the lookups
 * every route needs (the queue a request names, a task id from the path, whether a name may be
 * enqueued).
 */
import type { IncomingMessage } from 'node:http'
import type { Broker } from '../index.js'
import { HttpError, badRequest } from './errors.js'
import type { Authorize } from './auth.js'
import { hasControlChar } from './query.js'

/** Which task names `POST /api/tasks` may enqueue and `POST /api/tasks/:id/retry` may run again. */
export type SubmitPolicy =
  | 'exposed'
  | readonly string[]
  | ((name: string, queue: string, req: IncomingMessage) => boolean | Promise<boolean>)

/** Options after checks and defaults. */
export interface ServedOptions {
  check: ((header: string | undefined) => boolean) | undefined
  authorize: Authorize | undefined
  readOnly: boolean
  submit: SubmitPolicy
  basePath: string
  bodyLimit: number
  bodyTimeoutMs: number
  heartbeatMs: number
  maxEventStreams: number
  healthTimeoutMs: number
  onError: ((err: unknown, req: IncomingMessage) => void) | undefined
}

/** The served queues and options of one handler. */
export class Served {
  readonly brokers: ReadonlyMap<string, Broker>
  readonly options: ServedOptions

  constructor(brokers: readonly Broker[], options: ServedOptions) {
    const map = new Map<string, Broker>()
    for (const b of brokers) {
      if (map.has(b.name))
        throw new TypeError(
          `Expected one broker per queue; queue ${JSON.stringify(b.name)} is given twice`,
        )
      map.set(b.name, b)
    }
    this.brokers = map
    this.options = options
  }

  /** The served queue names. */
  get names(): string[] {
    return [...this.brokers.keys()]
  }

  /** The broker of `queue`; the only one when `queue` is left out and one is served. */
  broker(queue: string | undefined): Broker {
    if (queue === undefined) {
      if (this.brokers.size === 1) return this.brokers.values().next().value!
      throw badRequest(
        `name the queue (?queue=…): this server serves ${this.names.join(', ')}`,
        'ERR_WORQ_HTTP_QUEUE_REQUIRED',
      )
    }
    const broker = this.brokers.get(queue)
    if (!broker)
      throw new HttpError(
        404,
        'ERR_WORQ_HTTP_NO_SUCH_QUEUE',
        `this server does not serve a queue ${JSON.stringify(queue.slice(0, 64))}; it serves ${this.names.join(', ')}`,
      )
    return broker
  }

  /** Throws 403 unless `name` may be enqueued (submitted or retried) on `broker`'s queue. */
  async checkSubmit(broker: Broker, name: string, req: IncomingMessage): Promise<void> {
    const policy = this.options.submit
    const allowed =
      policy === 'exposed'
        ? (await broker.types()).some(t => t.name === name)
        : typeof policy === 'function'
          ? await policy(name, broker.name, req)
          : policy.includes(name)
    if (!allowed)
      throw new HttpError(
        403,
        'ERR_WORQ_HTTP_NOT_ALLOWED',
        policy === 'exposed'
          ? `no live worker of queue ${broker.name} exposes ${name}; only exposed tasks may be enqueued here`
          : `this server does not let ${name} be enqueued (its submit option)`,
      )
  }
}

/** A task id from the path: 1–256 characters without control characters, as the library's ids. */
export function taskId(raw: string | undefined): string {
  if (raw === undefined || raw.length === 0 || raw.length > 256 || hasControlChar(raw))
    throw badRequest(
      'Expected the task id to be 1–256 characters without control characters',
      'ERR_WORQ_HTTP_BAD_ID',
    )
  return raw
}
