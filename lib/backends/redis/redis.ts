/**
 * redis:// and rediss:// — the distributed backend. Every change is one Lua script (./scripts),
 * every key is built in keys.ts, connections are fixed in number (connections.ts): a command
 * connection, a subscriber for outcome delivery (feed.ts) and a blocking connection per queue a
 * worker waits on (waker.ts). What the workers do (exchanges, waits, handovers) is work.ts's; a
 * cancel waits for this process's pools (cancel-sync.ts). docs/redis.md describes the keys,
 * scripts and recovery latency.
 */
import { nanoid } from 'nanoid'
import {
  type Backend,
  type BackendLimits,
  type ControlMessage,
  type EventBatch,
  type ExchangeResult,
  type Lease,
  type Limit,
  type ListQuery,
  type MinuteCounts,
  type NewTask,
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
import { CancelSync } from './cancel-sync.js'
import { controlMessage, encodeTask } from './codec.js'
import { connect, disconnect, type Connection } from './connections.js'
import { EventReader } from './events.js'
import { HandOvers } from './handover.js'
import { OutcomeFeed } from './feed.js'
import { outcomeChannel, queueKey } from './keys.js'
import { listTasks } from './listing.js'
import { readMetrics } from './metrics.js'
import { infoOf, queueInfo, taskState } from './reports.js'
import { Scripts, type EnqueueReply } from './scripts.js'
import { readSchedules, scheduleDefinition, scheduleState } from './schedules.js'
import { limitSpec, limitsOf, settingsOf, settingsOfFlat, settingsFields } from './settings.js'
import { redactUrl } from '../../redact-url.js'
import { connectionTopology, type Topology } from './topology.js'
import type { RedisBackendOptions } from './options.js'
import { WorkerSide } from './work.js'
import { enqueueChunks } from './enqueue-chunks.js'
import { serverWarnings } from './checks.js'
import { PURGE_STEP, purgeInSteps } from '../purge-steps.js'

/** The Redis backend. */
export class RedisBackend implements Backend {
  readonly url: string
  readonly limits: BackendLimits
  /** Two lanes for a busy pool: its waves of calls reach Redis out of phase (docs/worker.md). */
  readonly lanes = 2
  /** A tick's first 25 calls go at once: Redis works on them while the process makes the rest. */
  readonly enqueueFirst = 25
  /** A bulk of calls goes in parts of 250 after the first 25 (docs/redis.md, "Bulk in parts"). */
  readonly enqueuePart = 250
  /** This instance's client id: outcomes of tasks enqueued here are published to its channel. */
  readonly clientId = nanoid(12)
  readonly #base: Topology
  readonly #cmd: Connection
  readonly #scripts: Scripts
  readonly #feed: OutcomeFeed
  readonly #events: EventReader
  readonly #handovers: HandOvers
  /** Cancels in step with this process's control listeners. */
  readonly #cancels = new CancelSync()
  readonly #work: WorkerSide
  #closed: Promise<void> | undefined

  constructor(raw: string, options: RedisBackendOptions) {
    this.url = redactUrl(raw)
    this.limits = { maxPayloadBytes: options.maxPayloadBytes }
    this.#base = connectionTopology(raw, options.redis)
    const timing = { blockMs: 5_000, marginMs: 2_000, ...options.timing }
    const liveness = { pingMs: 5_000, marginMs: timing.marginMs, ...options.liveness }
    const reach = { url: this.url, ms: options.connectTimeoutMs ?? 10_000 }
    this.#cmd = connect(this.#base, 'cmd', liveness, reach)
    this.#scripts = new Scripts(
      this.#cmd,
      options.functions ?? true,
      options.replicas,
      this.#base.kind === 'cluster' || options.crossSlot !== undefined,
    )
    this.#feed = new OutcomeFeed(
      () => connect(this.#base, 'sub', liveness, reach),
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
    this.#work = new WorkerSide({
      scripts: this.#scripts,
      feed: this.#feed,
      handovers: this.#handovers,
      clientId: this.clientId,
      limits: this.limits,
      block: () => connect(this.#base, 'block'),
      pushWake: wake => this.#cmd.lpush(wake, '1'),
      timing,
    })
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
    const self = this.#feed.listening ? this.clientId : ''
    const calls = enqueueChunks(this.#scripts, queue, this.clientId, self, tasks)
    let replies: Array<EnqueueReply>
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

  async exchange(...args: Parameters<Backend['exchange']>): Promise<ExchangeResult> {
    this.#open()
    return this.#work.exchange(...args)
  }

  async waitForWork(...args: Parameters<Backend['waitForWork']>): Promise<ReservedTask[]> {
    if (this.#closed) return []
    return this.#work.wait(...args)
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
    return taskState(await this.#scripts.status(queue, id))
  }

  async info(queue: string, id: string): Promise<StoredInfo | null> {
    this.#open()
    return infoOf(id, await this.#scripts.info(queue, id))
  }

  async list(queue: string, query: ListQuery): Promise<StoredInfo[]> {
    this.#open()
    const found = await listTasks(this.#scripts, queue, query)
    if (found === 'off') throw new ListingOff(queue)
    return found
  }

  async control(queue: string, listener: (message: ControlMessage) => void): Promise<() => void> {
    this.#open()
    const unlisten = this.#cancels.listening(queue)
    const unsubscribe = await this.#feed.control(queueKey(queue, 'ctl'), message => {
      const decoded = controlMessage(message)
      if (!decoded) return
      listener(decoded)
      if (decoded.type === 'cancel') this.#cancels.heard(queue, decoded.id)
    })
    return () => {
      unlisten()
      unsubscribe()
    }
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
    return settingsOfFlat(await this.#scripts.configure(queue, settingsFields(patch)))
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
    return (await this.#scripts.limit(queue, name, limitSpec(limit))) === 1
  }

  async listLimits(queue: string): Promise<Record<string, Limit>> {
    this.#open()
    return limitsOf(await this.#cmd.hget(queueKey(queue, 'conf'), 'lim'))
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
    gen: string | undefined,
    due: number,
    next: number | null,
    task: NewTask | null,
  ): Promise<boolean> {
    this.#open()
    const self = this.#feed.listening ? this.clientId : ''
    const entry = task ? encodeTask(task, this.clientId, Date.now()) : null
    const [acted, mine, owed] = await this.#scripts.fireSchedule(
      queue,
      { id, gen, due, next },
      self,
      entry,
    )
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
    const sync = this.#cancels.expect(queue, id)
    const [done, owed] = await this.#scripts.cancel(queue, id)
    this.#handovers.start(queue, owed)
    // A worker held it: wait until this process's pools heard (the message may come first).
    if (done === 2) await sync
    else if (sync) this.#cancels.heard(queue, id)
    return done > 0
  }

  async size(queue: string): Promise<number> {
    this.#open()
    return this.#scripts.size(queue)
  }

  /** In steps (purge-steps.ts, purge.lua), each a call of its own. */
  async purge(queue: string): Promise<number> {
    this.#open()
    return purgeInSteps(async () => {
      const [cancelled, owed, taken, left] = await this.#scripts.purge(queue, PURGE_STEP)
      this.#handovers.start(queue, owed)
      return { cancelled, taken, left, waiting: taken + left }
    })
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
    await this.#work.leave(queue, id)
    await this.#scripts.registerWorker(queue, id, 0, '')
  }

  async checks(): Promise<string[]> {
    this.#open()
    return serverWarnings(this.#cmd)
  }

  async inspect(queue: string): Promise<QueueInfo> {
    this.#open()
    return queueInfo(await this.#scripts.inspect(queue))
  }

  /** The connections this instance holds now (for tests of connection counts). @internal */
  connections(): Connection[] {
    const all = [this.#cmd]
    if (this.#feed.connection) all.push(this.#feed.connection)
    all.push(...this.#work.connections())
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
      this.#work.close()
      this.#events.close()
      const sub = this.#feed.connection
      await Promise.all([disconnect(this.#cmd, true), sub ? disconnect(sub, true) : undefined])
    })()
    return this.#closed
  }
}
