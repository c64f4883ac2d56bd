/**
 * redis:// and rediss:// — the distributed backend. Every change is one Lua script (./scripts),
 * every key is built in keys.ts, connections are fixed in number (connections.ts): a command
 * connection, a subscriber for outcome delivery (feed.ts) and a blocking connection per queue a
 * worker waits on (waker.ts). docs/redis.md describes the keys, scripts and recovery latency.
 */
import { nanoid } from 'nanoid'
import {
  type Backend,
  type BackendLimits,
  type ControlMessage,
  type EventBatch,
  type ExchangeResult,
  type Finish,
  type Lease,
  type Limit,
  type ListQuery,
  type MinuteCounts,
  type NewTask,
  type Park,
  type ProgressUpdate,
  type QueueSettings,
  type ReadOptions,
  type ReservedTask,
  type OutcomeListener,
  type QueueInfo,
  type StoredInfo,
  type StoredSchedule,
  type TaskState,
  type WorkerInfo,
} from '../backend.js'
import { BrokerClosed, ListingOff } from '../../errors.js'
import { boundedOutcome, outcomeStatus } from '../../outcome.js'
import { decodeReserved, encodeTask, histogramFields } from './codec.js'
import { connect, disconnect, type Connection, type Liveness } from './connections.js'
import { EventReader } from './events.js'
import { HandOvers } from './handover.js'
import { OutcomeFeed } from './feed.js'
import { outcomeChannel, queueKey } from './keys.js'
import { listTasks } from './listing.js'
import { readMetrics } from './metrics.js'
import { storedInfo } from './reports.js'
import { Scripts, type EnqueueEntry, type ExchangeReply, type FinishEntry } from './scripts.js'
import { readSchedules, scheduleDefinition, scheduleState } from './schedules.js'
import { settingsOf, settingsFields } from './settings.js'
import { redactUrl } from './url.js'
import { connectionTopology, type Topology } from './topology.js'
import { Waker, type WakerTiming } from './waker.js'
import { serverWarnings } from './checks.js'

/** Options of a RedisBackend. */
export interface RedisBackendOptions extends BackendLimits {
  /** ioredis options merged over the URL's, or an ioredis instance whose options are copied. */
  redis?: object | undefined
  /** Blocking-wait bounds (see waker.ts). @default { blockMs: 5_000, marginMs: 2_000 } */
  timing?: Partial<WakerTiming>
  /** Liveness checks of the command and subscriber connections. @default { pingMs: 5_000, marginMs: timing.marginMs } */
  liveness?: Partial<Liveness>
  /** Use a Redis function library where the server allows (see Scripts). @default true */
  functions?: boolean
  /** Replicas that must acknowledge an enqueue or a finish, and how long to wait for them. */
  replicas?: { count: number; timeoutMs: number }
  /** Two-step hand-overs on a single server too (`split`), or left to the sweep (`sweep`). */
  crossSlot?: 'split' | 'sweep'
}

/**
 * Tasks per enqueue.lua call. A batch goes as several calls, each written as soon as it is
 * encoded and none awaited before the next is sent: Redis runs one call while Node encodes the
 * next (the two share the machine's cores), and a call stays short however big the batch.
 */
const ENQUEUE_CHUNK = 250
/** …and about this many characters of records per call (big payloads go a few at a time). */
const ENQUEUE_CHARS = 2 * 1024 * 1024

/** Longest wait of a cancel for this process's pools to hear it, ms. */
const CANCEL_SYNC_MS = 2_000

/** The waker of one worker of one queue. */
const wakerKey = (queue: string, workerId: string) => `${queue}\n${workerId}`

/** A handover message: the JSON array hand_over() pushed (laid out like exchange's reserved). */
function parseHandover(message: string): unknown[] {
  const flat = JSON.parse(message) as unknown[]
  // cjson writes an empty slot list as {}.
  for (let i = 4; i < flat.length; i += 5) if (!Array.isArray(flat[i])) flat[i] = []
  return flat
}

/** The Redis backend. */
export class RedisBackend implements Backend {
  readonly url: string
  readonly limits: BackendLimits
  /** This instance's client id: outcomes of tasks enqueued here are published to its channel. */
  readonly clientId = nanoid(12)
  readonly #base: Topology
  readonly #cmd: Connection
  readonly #scripts: Scripts
  readonly #feed: OutcomeFeed
  readonly #events: EventReader
  readonly #handovers: HandOvers
  /** Control subscriptions of this process, by queue. */
  readonly #controlled = new Map<string, number>()
  /** Cancels waiting for this process's pools to hear them, by queue and id. */
  readonly #cancelWaiters = new Map<string, Set<() => void>>()
  readonly #wakers = new Map<string, Waker>()
  readonly #timing: WakerTiming
  /** Name and attempt of tasks reserved here, by token (to describe an oversize result). */
  readonly #reserved = new Map<string, { name: string; attempt: number }>()
  #closed: Promise<void> | undefined

  constructor(raw: string, options: RedisBackendOptions) {
    this.url = redactUrl(raw)
    this.limits = { maxPayloadBytes: options.maxPayloadBytes }
    this.#base = connectionTopology(raw, options.redis)
    this.#timing = { blockMs: 5_000, marginMs: 2_000, ...options.timing }
    const liveness = { pingMs: 5_000, marginMs: this.#timing.marginMs, ...options.liveness }
    this.#cmd = connect(this.#base, 'cmd', liveness)
    this.#scripts = new Scripts(
      this.#cmd,
      options.functions ?? true,
      options.replicas,
      this.#base.kind === 'cluster' || options.crossSlot !== undefined,
    )
    this.#feed = new OutcomeFeed(
      () => connect(this.#base, 'sub', liveness),
      outcomeChannel(this.clientId),
      (channel, message) => this.#cmd.publish(channel, message),
    )
    this.#events = new EventReader(this.#cmd, () => connect(this.#base, 'events'))
    this.#handovers = new HandOvers(
      this.#scripts,
      options.crossSlot !== 'sweep',
      () => (this.#feed.listening ? this.clientId : ''),
      mine => this.#feed.deliver(mine),
    )
    // Outcomes of this process's own tasks ride in script replies; a reply lost with a dropped
    // connection (ioredis resends the call, which then finds the work done) must not leave a
    // waiter hanging: after every reconnect, waiters re-check.
    let connected = false
    this.#cmd.on('ready', () => {
      if (connected) this.#feed.gap()
      connected = true
    })
  }

  #open(): void {
    if (this.#closed) throw new BrokerClosed('Redis backend')
  }

  async enqueue(queue: string, tasks: readonly NewTask[]): Promise<Array<'ok' | 'duplicate'>> {
    this.#open()
    const now = Date.now()
    const self = this.#feed.listening ? this.clientId : ''
    const entries: EnqueueEntry[] = []
    const calls: Array<Promise<[number[], string[], string[]]>> = []
    let from = 0
    let chars = 0
    for (const task of tasks) {
      const entry = encodeTask(task, this.clientId, now)
      entries.push(entry)
      chars += entry.body.length
      if (entries.length - from === ENQUEUE_CHUNK || chars >= ENQUEUE_CHARS) {
        calls.push(this.#scripts.enqueue(queue, self, entries, from, entries.length))
        from = entries.length
        chars = 0
      }
    }
    if (from < entries.length) calls.push(this.#scripts.enqueue(queue, self, entries, from))
    let replies: Array<[number[], string[], string[]]>
    try {
      // One call (the common batch) needs no Promise.all.
      replies = calls.length === 1 ? [await calls[0]!] : await Promise.all(calls)
    } catch (err) {
      if (self) this.#feed.gap()
      throw err
    }
    const results: Array<'ok' | 'duplicate'> = []
    for (const [codes, mine, owed] of replies) {
      for (const c of codes) results.push(c === 1 ? 'ok' : 'duplicate')
      if (mine.length > 0) this.#feed.deliver(mine)
      if (owed.length > 0) this.#handovers.start(queue, owed)
    }
    return results
  }

  async exchange(
    queue: string,
    workerId: string,
    done: readonly Finish[],
    max: number,
    park?: Park,
  ): Promise<ExchangeResult> {
    this.#open()
    const finishes: FinishEntry[] = done.map(f => {
      const known = this.#reserved.get(f.token)
      this.#reserved.delete(f.token)
      if (f.release) return { id: f.id, token: f.token, outcome: '', retryAt: 'release' }
      // A retry sends its failure along (for the `retrying` event), cut short when large.
      if (f.retryAt !== undefined)
        return {
          id: f.id,
          token: f.token,
          outcome: f.outcome.length > 8192 ? '' : f.outcome,
          retryAt: f.retryAt,
        }
      return { id: f.id, token: f.token, outcome: this.#bounded(queue, f, known) }
    })
    const times = histogramFields(done)
    const woken = this.#wakers.get(wakerKey(queue, workerId))?.takeWoken() ?? false
    const nonce = `${workerId}:${nanoid(8)}`
    // A listening instance takes its own tasks' outcomes in the reply: no PUBLISH, no hop through
    // the subscriber connection. A lost reply may have carried some: listeners re-check.
    const self = this.#feed.listening ? this.clientId : ''
    let reply: ExchangeReply
    try {
      reply = await this.#scripts.exchange(
        queue,
        nonce,
        max,
        woken,
        self,
        workerId,
        park,
        times,
        finishes,
      )
    } catch (err) {
      if (self && finishes.length > 0) this.#feed.gap()
      throw err
    }
    const [stale, flat, nextDue, mine, owed] = reply
    if (mine.length > 0) this.#feed.deliver(mine)
    if (owed.length > 0) this.#handovers.start(queue, owed)
    const reserved = this.#took(flat)
    const result: ExchangeResult = { stale, reserved }
    if (nextDue >= 0) result.nextDueIn = nextDue
    return result
  }

  /** The outcome, or a failure saying it is over `maxPayloadBytes`. */
  #bounded(queue: string, f: Finish, known?: { name: string; attempt: number }): string {
    return boundedOutcome(f.outcome, this.limits.maxPayloadBytes, () => ({
      taskName: known?.name ?? 'unknown',
      queue,
      taskId: f.id,
      attempts: known?.attempt,
    }))
  }

  /** Decodes reserved tasks and remembers their names (to describe an oversize result). */
  #took(flat: readonly unknown[]): ReservedTask[] {
    const reserved = decodeReserved(flat)
    for (const t of reserved) this.#reserved.set(t.token, { name: t.name, attempt: t.attempt })
    return reserved
  }

  /** The tasks of a handover message (none from a message hand_over() did not write). */
  #handed(message: string): ReservedTask[] {
    try {
      return this.#took(parseHandover(message))
    } catch {
      return [] // its tasks, if any, are swept with their leases
    }
  }

  async waitForWork(
    queue: string,
    workerId: string,
    timeoutMs: number,
    signal?: AbortSignal,
  ): Promise<ReservedTask[]> {
    if (this.#closed) return []
    const id = wakerKey(queue, workerId)
    let waker = this.#wakers.get(id)
    if (!waker) {
      const wake = queueKey(queue, 'wake')
      waker = new Waker(
        () => connect(this.#base, 'block'),
        { handover: queueKey(queue, `h:${workerId}`), wake },
        () => this.#cmd.lpush(wake, '1'),
        this.#timing,
      )
      this.#wakers.set(id, waker)
    }
    const handover = await waker.wait(timeoutMs, signal)
    return handover === undefined ? [] : this.#handed(handover)
  }

  async renew(queue: string, leases: readonly Lease[]): Promise<string[]> {
    this.#open()
    if (leases.length === 0) return []
    return this.#scripts.renew(queue, leases)
  }

  async sweep(queue: string, intervalMs: number): Promise<number> {
    this.#open()
    const [handled, owed] = await this.#scripts.sweep(queue, intervalMs, Math.random())
    this.#handovers.start(queue, owed)
    return handled
  }

  async progress(queue: string, updates: readonly ProgressUpdate[]): Promise<void> {
    this.#open()
    if (updates.length === 0) return
    const self = this.#feed.listening ? this.clientId : ''
    const mine = await this.#scripts.progress(queue, self, updates)
    if (mine.length > 0) this.#feed.deliver(mine)
  }

  async status(queue: string, id: string): Promise<TaskState | null> {
    this.#open()
    const s = await this.#scripts.status(queue, id)
    if (s === null) return null
    if (s === 'P') return { status: 'pending' }
    if (s === 'E') return { status: 'enqueued' }
    if (s === 'R') return { status: 'processing' }
    if (s.charAt(0) === 'C') {
      const outcome = 'c' + s.slice(1)
      return { status: 'completed', outcome, cached: true }
    }
    return { status: outcomeStatus(s), outcome: s }
  }

  async info(queue: string, id: string): Promise<StoredInfo | null> {
    this.#open()
    const reply = await this.#scripts.info(queue, id)
    if (!reply) return null
    // Lua's false arrives as null.
    const [rec, tokens, progress, due] = reply as unknown as Array<string | null>
    return storedInfo(id, rec!, tokens ?? false, progress ?? false, due ?? false)
  }

  async list(queue: string, query: ListQuery): Promise<StoredInfo[]> {
    this.#open()
    const found = await listTasks(this.#scripts, queue, query)
    if (found === 'off') throw new ListingOff(queue)
    return found
  }

  async control(queue: string, listener: (message: ControlMessage) => void): Promise<() => void> {
    this.#open()
    this.#controlled.set(queue, (this.#controlled.get(queue) ?? 0) + 1)
    const unsubscribe = await this.#feed.control(queueKey(queue, 'ctl'), message => {
      const kind = message.charAt(0)
      if (kind === 'c') {
        listener({ type: 'cancel', id: message.slice(1) })
        this.#cancelHeard(queue, message.slice(1))
      } else if (kind === 'P') listener({ type: 'paused' })
      else if (kind === 'R') listener({ type: 'resumed' })
      else if (kind === 'S') listener({ type: 'schedules' })
      else if (kind === '') listener({ type: 'resync' })
    })
    return () => {
      this.#controlled.set(queue, (this.#controlled.get(queue) ?? 1) - 1)
      unsubscribe()
    }
  }

  /** This process's control listeners of `queue` heard the cancel of `id`. */
  #cancelHeard(queue: string, id: string): void {
    const key = `${queue}\n${id}`
    for (const done of [...(this.#cancelWaiters.get(key) ?? [])]) done()
  }

  /**
   * Resolves once this process's pools of `queue` heard that `id` was cancelled (at most
   * CANCEL_SYNC_MS): a task one of them reserved ahead and has not started is then never started.
   * Pools in other processes hear it as the message reaches them.
   */
  #cancelSync(queue: string, id: string): Promise<void> {
    if (!this.#controlled.get(queue)) return Promise.resolve()
    const key = `${queue}\n${id}`
    return new Promise(resolve => {
      const waiters = this.#cancelWaiters.get(key) ?? new Set<() => void>()
      const done = () => {
        clearTimeout(timer)
        waiters.delete(done)
        if (waiters.size === 0 && this.#cancelWaiters.get(key) === waiters)
          this.#cancelWaiters.delete(key)
        resolve()
      }
      const timer = setTimeout(done, CANCEL_SYNC_MS)
      waiters.add(done)
      this.#cancelWaiters.set(key, waiters)
    })
  }

  async settings(queue: string): Promise<QueueSettings> {
    this.#open()
    return settingsOf(await this.#cmd.hgetall(queueKey(queue, 'conf')))
  }

  async configure(
    queue: string,
    patch: Partial<Omit<QueueSettings, 'paused'>>,
  ): Promise<QueueSettings> {
    this.#open()
    const flat = await this.#scripts.configure(queue, settingsFields(patch))
    const h: Record<string, string> = {}
    for (let i = 0; i + 1 < flat.length; i += 2) h[flat[i]!] = flat[i + 1]!
    return settingsOf(h)
  }

  async pause(queue: string, paused: boolean): Promise<boolean> {
    this.#open()
    return (await this.#scripts.pause(queue, paused)) === 1
  }

  async cacheDelete(queue: string, key: string): Promise<boolean> {
    this.#open()
    return (await this.#scripts.cache(queue, 'delete', key)) === 1
  }

  async cacheClear(queue: string): Promise<number> {
    this.#open()
    return this.#scripts.cache(queue, 'clear')
  }

  async cacheSize(queue: string): Promise<number> {
    this.#open()
    return this.#scripts.cache(queue, 'size')
  }

  async setLimit(queue: string, name: string, limit: Limit | null): Promise<boolean> {
    this.#open()
    const spec =
      limit === null
        ? ''
        : JSON.stringify({
            ...(limit.concurrency !== undefined && { c: limit.concurrency }),
            ...(limit.rate !== undefined && { r: [limit.rate.max, limit.rate.per] }),
          })
    return (await this.#scripts.limit(queue, name, spec)) === 1
  }

  async listLimits(queue: string): Promise<Record<string, Limit>> {
    this.#open()
    const lim = await this.#cmd.hget(queueKey(queue, 'conf'), 'lim')
    const out: Record<string, Limit> = {}
    if (!lim) return out
    for (const [name, spec] of Object.entries(
      JSON.parse(lim) as Record<string, { c?: number; r?: [number, number] }>,
    )) {
      const l: Limit = {}
      if (spec.c !== undefined) l.concurrency = spec.c
      if (Array.isArray(spec.r)) l.rate = { max: spec.r[0], per: spec.r[1] }
      out[name] = l
    }
    return out
  }

  async putSchedule(queue: string, schedule: StoredSchedule): Promise<void> {
    this.#open()
    await this.#scripts.putSchedule(
      queue,
      schedule.id,
      scheduleDefinition(schedule),
      scheduleState(schedule),
    )
  }

  async removeSchedule(queue: string, id: string): Promise<boolean> {
    this.#open()
    return (await this.#scripts.removeSchedule(queue, id)) === 1
  }

  async schedules(queue: string): Promise<StoredSchedule[]> {
    this.#open()
    return readSchedules(this.#cmd, queue)
  }

  async fireSchedule(
    queue: string,
    id: string,
    due: number,
    next: number | null,
    task: NewTask | null,
  ): Promise<boolean> {
    this.#open()
    const self = this.#feed.listening ? this.clientId : ''
    const entry = task ? encodeTask(task, this.clientId, Date.now()) : null
    const [acted, mine, owed] = await this.#scripts.fireSchedule(queue, id, due, next, self, entry)
    if (mine.length > 0) this.#feed.deliver(mine)
    this.#handovers.start(queue, owed)
    return acted === 1
  }

  readEvents(queue: string, after: string, options: ReadOptions): Promise<EventBatch> {
    this.#open()
    return this.#events.read(queue, after, options)
  }

  async metrics(
    queue: string,
    minutes: number,
  ): Promise<{ minutes: MinuteCounts[]; totals: MinuteCounts }> {
    this.#open()
    return readMetrics(await this.#scripts.metrics(queue, minutes), minutes)
  }

  async cancel(queue: string, id: string): Promise<boolean> {
    this.#open()
    const sync = this.#controlled.get(queue) ? this.#cancelSync(queue, id) : undefined
    const [done, owed] = await this.#scripts.cancel(queue, id)
    this.#handovers.start(queue, owed)
    // A worker held it: wait until this process's pools heard (the message may come first).
    if (done === 2) await sync
    else if (sync) this.#cancelHeard(queue, id)
    return done > 0
  }

  async size(queue: string): Promise<number> {
    this.#open()
    return this.#scripts.size(queue)
  }

  async purge(queue: string): Promise<number> {
    this.#open()
    const [count, owed] = await this.#scripts.purge(queue)
    this.#handovers.start(queue, owed)
    return count
  }

  listen(listener: OutcomeListener, onGap: () => void): Promise<void> {
    this.#open()
    return this.#feed.listen(listener, onGap)
  }

  async registerWorker(queue: string, info: WorkerInfo, ttlMs: number): Promise<void> {
    this.#open()
    await this.#scripts.registerWorker(queue, info.id, Math.max(1, ttlMs), JSON.stringify(info))
  }

  async unregisterWorker(queue: string, id: string): Promise<void> {
    this.#open()
    // Handovers popped that nobody took, and those still in the list, go back first in line.
    const key = wakerKey(queue, id)
    const waker = this.#wakers.get(key)
    this.#wakers.delete(key)
    waker?.close()
    const kept = (waker?.takeKept() ?? []).flatMap(m => this.#handed(m))
    if (kept.length > 0) {
      const releases = kept.map(t => ({ id: t.id, token: t.token, outcome: '', release: true }))
      await this.exchange(queue, id, releases, 0)
    }
    await this.#scripts.registerWorker(queue, id, 0, '')
  }

  async checks(): Promise<string[]> {
    this.#open()
    return serverWarnings(this.#cmd)
  }

  async inspect(queue: string): Promise<QueueInfo> {
    this.#open()
    const [waiting, delayed, pending, processing, oldest, now, flat, paused] =
      await this.#scripts.inspect(queue)
    const workers: WorkerInfo[] = []
    for (let i = 1; i < flat.length; i += 2) {
      const info = JSON.parse(flat[i]!) as WorkerInfo
      workers.push({ ...info, seenAt: info.seenAt })
    }
    return {
      waiting,
      delayed,
      pending,
      processing,
      oldestWaitingMs: oldest < 0 ? null : Math.max(0, now - oldest),
      paused: paused === 1,
      workers,
    }
  }

  /** The connections this instance holds now (for tests of connection counts). @internal */
  connections(): Connection[] {
    const all = [this.#cmd]
    if (this.#feed.connection) all.push(this.#feed.connection)
    for (const w of this.#wakers.values()) if (w.connection) all.push(w.connection)
    all.push(...this.#events.connections)
    return all
  }

  /** Resolves when the hand-overs between slots started so far are over (for tests). @internal */
  handedOver(): Promise<void> {
    return this.#handovers.settled()
  }

  close(): Promise<void> {
    this.#closed ??= (async () => {
      // Hand-overs under way finish first (a process that dies instead leaves them to the sweep).
      await this.#handovers.settled()
      for (const w of this.#wakers.values()) w.close()
      this.#events.close()
      const sub = this.#feed.connection
      await Promise.all([disconnect(this.#cmd, true), sub ? disconnect(sub, true) : undefined])
    })()
    return this.#closed
  }
}
