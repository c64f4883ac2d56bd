/**
 * Typed wrappers of the Lua operations in ./scripts, one method per operation: each lays out its
 * arguments as the operation's header lists them (ARGV slots) and types its reply. How a call
 * reaches Redis (the function library or scripts, WAIT for replicas) is lua-call.ts's. Call sites
 * never name a script or count keys.
 */
import type { Park } from '../backend.js'
import type { Connection } from './connections.js'
import { LuaCaller, type Arg } from './lua-call.js'
import { decodeEnqueueReply, decodeExchangeReply } from './replies.js'
import type {
  EnqueueEntry,
  EnqueueReply,
  ExchangeReply,
  FinishEntry,
  Fill,
  InfoReply,
  Link,
  ListReply,
  ListStep,
  MetricsReply,
} from './script-types.js'

export type * from './script-types.js'

/** The operations, bound to one command connection. */
export class Scripts {
  readonly #lua: LuaCaller
  /** Cross-queue hand-overs go in two steps (a cluster: a call keeps to its queue's slot). */
  readonly split: boolean

  /**
   * `functions` false: never load the function library; send scripts with EVALSHA. `replicas`:
   * how many replicas must acknowledge an enqueue or a finish (WAIT), and how long they may take.
   */
  constructor(
    redis: Connection,
    functions = true,
    replicas = { count: 0, timeoutMs: 1_000 },
    split = redis.isCluster,
  ) {
    this.#lua = new LuaCaller(redis, { functions, replicas, split })
    this.split = split
  }

  /**
   * 1 (stored) or 0 (duplicate) per task, the outcomes of `self`'s tasks that ended at once
   * (queue, id, outcome, …), which are not published, and the hand-overs owed (handover.ts).
   */
  async enqueue(
    queue: string,
    self: string,
    tasks: readonly EnqueueEntry[],
    from = 0,
    to = tasks.length,
  ): Promise<EnqueueReply> {
    const args: Arg[] = new Array(2 + 4 * (to - from))
    args[0] = self
    args[1] = to - from
    let a = 2
    for (let i = from; i < to; i++) {
      const t = tasks[i]!
      args[a++] = t.id
      args[a++] = t.runAt
      args[a++] = t.body
      args[a++] = t.meta
    }
    const flat = (await this.#lua.call('enqueue', queue, args)) as unknown[]
    return decodeEnqueueReply(flat, to - from)
  }

  /**
   * Stale ids, reserved tasks (5 entries each: id, token, attempt, record, slots), nextDueIn, the
   * outcomes of `self`'s own tasks (queue, id, outcome, …), which are not published, and the
   * hand-overs owed (handover.ts). `times` are the histogram counts of the runs `done` reports
   * (histogramFields()), `each` those runs' times one by one (finishTimes()).
   */
  async exchange(
    queue: string,
    nonce: string,
    max: number,
    woken: boolean,
    self: string,
    worker: string,
    park: Park | undefined,
    times: string,
    done: readonly FinishEntry[],
    each = '',
  ): Promise<ExchangeReply> {
    const args: Arg[] = [
      nonce,
      max,
      woken ? '1' : '0',
      self,
      worker,
      park ? Math.round(park.ms) : 0,
      park ? Math.max(0, Math.floor(park.slots)) : 0,
      times,
      done.length,
    ]
    for (const f of done) args.push(f.id, f.token, f.outcome, f.retryAt ?? '')
    // Each finish's times, for the script to take a refused one's back from `times` (a lone
    // finish's share is `times` itself).
    if (done.length > 1) args.push(each)
    return decodeExchangeReply((await this.#lua.call('exchange', queue, args)) as unknown[])
  }

  /** Ids whose lease was lost. */
  renew(
    queue: string,
    leases: ReadonlyArray<{ id: string; token: string; heartrate: number }>,
  ): Promise<string[]> {
    const args: Arg[] = [leases.length]
    for (const l of leases) args.push(l.id, l.token, l.heartrate)
    return this.#lua.call('renew', queue, args) as Promise<string[]>
  }

  /**
   * How many lapsed tasks were handled (0 when another caller swept within `intervalMs`), and the
   * hand-overs to do: owed by its cascades, or owed too long (their caller died between steps).
   */
  sweep(queue: string, intervalMs: number, random: number): Promise<[number, string[]]> {
    return this.#lua.call('sweep', queue, [Math.max(1, Math.round(intervalMs)), random]) as Promise<
      [number, string[]]
    >
  }

  /** 1 when cancelled, and the hand-overs owed. */
  cancel(queue: string, id: string): Promise<[number, string[]]> {
    return this.#lua.call('cancel', queue, [id]) as Promise<[number, string[]]>
  }

  /** How many were cancelled, and the hand-overs owed. */
  /** One step of a purge: { cancelled, owed, taken, left } (purge.lua). */
  purge(queue: string, budget: number): Promise<[number, string[], number, number]> {
    return this.#lua.call('purge', queue, [budget]) as Promise<[number, string[], number, number]>
  }

  /**
   * Registers dependents of other queues on argument tasks of `queue` (link.lua): per link, ''
   * (registered) or the argument's outcome (it has ended).
   */
  link(queue: string, links: readonly Link[]): Promise<string[]> {
    const args: Arg[] = [links.length]
    for (const l of links) args.push(l.queue, l.id, l.slot, l.generation, l.argument)
    return this.#lua.call('link', queue, args) as Promise<string[]>
  }

  /**
   * Fills argument slots of `queue`'s tasks with outcomes from other queues and drops owed
   * hand-overs that are done (fill.lua): the outcomes of `self`'s tasks that ended, and the
   * hand-overs the cascade owes.
   */
  fill(
    queue: string,
    self: string,
    fills: readonly Fill[],
    drop: readonly string[],
  ): Promise<[string[], string[]]> {
    const args: Arg[] = [self, fills.length]
    for (const f of fills) args.push(f.id, f.slot, f.generation, f.outcome)
    args.push(drop.length, ...drop)
    return this.#lua.call('fill', queue, args) as Promise<[string[], string[]]>
  }

  /** null, an outcome string, or 'P' / 'E' / 'R' (pending, enqueued, processing). */
  status(queue: string, id: string): Promise<string | null> {
    return this.#lua.call('status', queue, [id]) as Promise<string | null>
  }

  /** Enqueued + delayed + pending. */
  size(queue: string): Promise<number> {
    return this.#lua.call('size', queue, []) as Promise<number>
  }

  /** [waiting, delayed, pending, processing, oldest ready ms or -1, now, [id, json, …], paused]. */
  inspect(
    queue: string,
  ): Promise<[number, number, number, number, number, number, string[], number]> {
    return this.#lua.call('inspect', queue, []) as Promise<
      [number, number, number, number, number, number, string[], number]
    >
  }

  /** Registers a worker for `ttlMs`, or removes it with `ttlMs` 0. */
  registerWorker(queue: string, id: string, ttlMs: number, info: string): Promise<unknown> {
    return this.#lua.call('register-worker', queue, [id, Math.round(ttlMs), info])
  }

  /** Stores progress; returns the progress of `self`'s own tasks (queue, id, 'p' + value, …). */
  progress(
    queue: string,
    self: string,
    updates: ReadonlyArray<{ id: string; token: string; value: string }>,
  ): Promise<string[]> {
    const args: Arg[] = [self, updates.length]
    for (const u of updates) args.push(u.id, u.token, u.value)
    return this.#lua.call('progress', queue, args) as Promise<string[]>
  }

  /** null, or [record, tokens value | false, progress | false, due | false]. */
  info(queue: string, id: string): Promise<InfoReply | null> {
    return this.#lua.call('info', queue, [id]) as Promise<InfoReply | null>
  }

  /** One step of a listing (list.lua): ['off'], or [matches, skipped, next | false]. */
  list(queue: string, step: ListStep): Promise<ListReply> {
    return this.#lua.call('list', queue, [
      step.statuses,
      step.name,
      step.before,
      step.after,
      step.skip,
      step.want,
      step.cursor,
      step.budget,
    ]) as Promise<ListReply>
  }

  /** Sets settings (field, value, …); returns the settings hash, flat. */
  configure(queue: string, fields: Arg[]): Promise<string[]> {
    return this.#lua.call('configure', queue, ['set', ...fields]) as Promise<string[]>
  }

  /** Pauses or resumes; 1 when the state changed. */
  pause(queue: string, paused: boolean): Promise<number> {
    return this.#lua.call('configure', queue, [paused ? 'pause' : 'resume']) as Promise<number>
  }

  /** Sets (JSON) or removes ('') a limit; 1 when something changed. */
  limit(queue: string, name: string, spec: string): Promise<number> {
    return this.#lua.call('limit', queue, [name, spec]) as Promise<number>
  }

  /** The result cache: delete one key (1/0), clear (how many), size. */
  cache(queue: string, action: 'delete' | 'clear' | 'size', cacheKey = ''): Promise<number> {
    return this.#lua.call('cache', queue, [action, cacheKey]) as Promise<number>
  }

  /** Stores a schedule's definition and state. */
  putSchedule(queue: string, id: string, definition: string, state: string): Promise<unknown> {
    return this.#lua.call('schedule', queue, ['put', id, definition, state])
  }

  /** Removes a schedule; 1 when there was one. */
  removeSchedule(queue: string, id: string): Promise<number> {
    return this.#lua.call('schedule', queue, ['remove', id]) as Promise<number>
  }

  /** The totals and the minutes from the window's first (or the first not folded) to now. */
  metrics(queue: string, minutes: number): Promise<MetricsReply> {
    return this.#lua.call('metrics', queue, [minutes]) as Promise<MetricsReply>
  }

  /**
   * Fires a schedule's due time (with a task, or skips it without one) while its definition is
   * still generation `gen` (undefined: one stored without): [acted, mine, owed].
   */
  fireSchedule(
    queue: string,
    fire: { id: string; gen: string | undefined; due: number; next: number | null },
    self: string,
    task: EnqueueEntry | null,
  ): Promise<[number, string[], string[]]> {
    const { id, gen, due, next } = fire
    const args: Arg[] = [
      'fire',
      id,
      String(due),
      next === null ? '' : String(next),
      self,
      gen ?? '',
    ]
    if (task) args.push(task.id, task.runAt, task.body, task.meta)
    return this.#lua.call('schedule', queue, args) as Promise<[number, string[], string[]]>
  }
}
