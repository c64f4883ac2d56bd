/**
 * A lane of a WorkerPool: one exchange loop with slots of its own. Towards the backend a lane is a
 * worker: it finishes what ended and reserves what fits in one round trip (`exchange`), parks and
 * blocks under its own id when there is nothing to do, and renews its own leases. A pool runs one
 * lane, or several when its concurrency is high (pool-options.ts): each lane's waves of calls
 * then go to the backend out of phase with the others', so this process works on one lane's tasks
 * while the backend runs another's exchange (docs/worker.md, "Lanes").
 */
import type { Backend, Finish, ReservedTask } from '../backends/backend.js'
import { BrokerClosed } from '../errors.js'
import type { WorkerPoolEvents } from './events.js'
import type { Executor } from './executor.js'
import { LeaseKeeper } from './leases.js'
import type { ProgressWriter } from './progress.js'
import { Slots } from './slots.js'

/**
 * Longest park (ms): work that arrives within it is handed straight to this lane, later work wakes
 * it with a marker. Short, because a lane that dies parked is handed work it never runs (each such
 * task waits out its lease before the sweep puts it back).
 */
const PARK_MS = 1_000

/** What a lane needs from its pool. */
export interface LaneHost {
  readonly backend: Backend
  readonly queue: string
  readonly executor: Executor
  readonly progress: ProgressWriter
  readonly blockTimeout: number
  /** The worker's heartrate: the longest lease renewal period of its tasks (undefined: their own). */
  readonly heartrate: number | undefined
  /** The pool's state: a lane reserves only while it is `running`. */
  state(): 'idle' | 'running' | 'stopping' | 'stopped'
  /** The backend is gone (BrokerClosed): the pool stops everything at once. */
  halt(): void
  emit<K extends keyof WorkerPoolEvents & string>(event: K, ...args: WorkerPoolEvents[K]): void
  listens(event: keyof WorkerPoolEvents & string): boolean
}

/** One exchange loop of a pool, with its slots and leases, under worker id `id`. */
export class Lane {
  readonly slots: Slots
  readonly leases: LeaseKeeper
  #done: Finish[] = []
  #kick: (() => void) | undefined
  #waiting: Promise<void> | undefined
  /** A wait for work ended (woken or timed out) and no exchange has looked since. */
  #woke = false
  /** The last wait ended with a handover; no exchange since. */
  #handed = false
  /** The last exchange reserved fewer tasks than it asked for. */
  #drained = false
  readonly #abort = new AbortController()
  #loop: Promise<void> | undefined
  /**
   * Reserved tasks being renewed before they start (their cancel was heard first, or their lease
   * is cut to the worker's heartrate).
   */
  readonly #rechecks = new Set<Promise<void>>()

  constructor(
    readonly id: string,
    private readonly host: LaneHost,
    concurrency: number,
    prefetch: number,
  ) {
    const { backend, queue } = host
    const error = (err: Error) => host.emit('pool:error', err)
    this.leases = new LeaseKeeper(
      backend,
      queue,
      {
        lost: taskId => {
          this.slots.leaseLost(taskId)
          host.emit('lease:lost', { id: taskId, queue })
        },
        error,
      },
      host.heartrate,
    )
    const leases = this.leases
    this.slots = new Slots(
      {
        workerId: id,
        queue,
        executor: host.executor,
        leases,
        progress: host.progress,
        get accepting() {
          return host.state() === 'running'
        },
        ended: finish => {
          this.#done.push(finish)
          this.wake()
        },
        emit: (event, ...args) => host.emit(event, ...args),
        listens: event => host.listens(event),
      },
      concurrency,
      prefetch,
    )
  }

  /** Starts the loop. */
  start(): void {
    this.#loop = this.#run()
  }

  /** Resolves when the loop has ended (the pool stopped, or halted). */
  ended(): Promise<void> {
    return this.#loop ?? Promise.resolve()
  }

  /** Finishes to send with the next exchange. */
  finished(finishes: readonly Finish[]): void {
    this.#done.push(...finishes)
    this.wake()
  }

  /** Ends the lane's waits for work (the pool is stopping). */
  abort(): void {
    this.#abort.abort()
  }

  /** Takes what ended, or stopped waiting, to the loop now. */
  wake(): void {
    const kick = this.#kick
    this.#kick = undefined
    kick?.()
  }

  /**
   * Finishes left when the loop has ended (a handover popped as it ended): sent in one last
   * exchange rather than left to lapse.
   */
  async flushLate(): Promise<void> {
    while (this.#rechecks.size > 0) await Promise.all(this.#rechecks)
    if (this.#done.length === 0) return
    const late = this.#done
    this.#done = []
    await this.host.backend.exchange(this.host.queue, this.id, late, 0).catch(() => undefined)
  }

  async #run(): Promise<void> {
    const { backend, queue } = this.host
    const slots = this.slots
    let failures = 0
    /**
     * After an exchange that failed or ran unconfirmed: false when a stopped pool has tried
     * enough, else a pause that doubles from 100 ms to 2 s.
     */
    const backOff = async (): Promise<boolean> => {
      if (this.host.state() === 'stopped' && ++failures > 3) return false
      await delay(Math.min(100 * 2 ** failures++, 2000))
      return true
    }
    while (this.host.state() !== 'stopped' || this.#done.length > 0) {
      slots.fill()
      const running = this.host.state() === 'running'
      const free = running ? slots.free() : 0
      if ((free === 0 || this.#handed) && this.#done.length === 0) {
        if (this.host.state() === 'stopped') break
        if (free === 0) {
          await this.#nextKick()
          continue
        }
        // Tasks were just handed over, all this lane could start. Exchange when one ends (a kick)
        // or a wake marker says work waits in line, not now for what would likely be nothing.
        this.#handed = false
        await this.#waitOrKick(undefined)
        continue
      }
      const done = this.#done
      this.#done = []
      let result
      try {
        // While running, ask to be parked: work that arrives before the next exchange is
        // reserved for this lane and handed over through waitForWork.
        this.#handed = false
        // Handed over: what can start at once, not the prefetch (a lane that dies parked loses
        // what it was handed).
        const park = running
          ? { ms: Math.min(this.host.blockTimeout, PARK_MS), slots: slots.startable() }
          : undefined
        const exchanged = backend.exchange(queue, this.id, done, free, park)
        // Where the last exchange found the queue drained, this one likely parks: block now, while
        // the backend runs it, so the handover finds the wait in place and no block call is left
        // to write on the next call's path.
        if (park && this.#drained) this.#arm(this.host.blockTimeout)
        result = await exchanged
      } catch (err) {
        this.#done.unshift(...done)
        this.host.emit('pool:error', err as Error)
        if (err instanceof BrokerClosed) {
          this.host.halt()
          break
        }
        if (!(await backOff())) break
        continue
      }
      for (const id of result.stale) {
        // A lease the keeper already reported lost is not reported again when its finish is
        // refused, nor is a run's that a cancel ended (reported as task:cancelled).
        if (!slots.takeLost(id) && !slots.takeCancelledEnd(id))
          this.host.emit('lease:lost', { id, queue })
      }
      // The rest went through refused without a report; those sent again (unconfirmed, below)
      // keep their mark for the exchange that takes them. By id: the backend sends them again as
      // copies without their times (Redis, work.ts), so no object of `done` is among them.
      const again = result.unconfirmed?.finishes
      for (const f of done) if (!again?.some(g => g.id === f.id)) slots.takeCancelledEnd(f.id)
      const accepting = this.#accept(result.reserved)
      if (accepting) await accepting
      if (result.unconfirmed) {
        // It ran, its durability unconfirmed (Redis `replicas`): what it reserved runs (above), its
        // finishes go again with the next exchange, after a pause as after a failure.
        this.#done.unshift(...result.unconfirmed.finishes)
        this.host.emit('pool:error', result.unconfirmed.error)
        if (!(await backOff())) break
        continue
      }
      failures = 0
      // Fewer than asked: the queue is drained. Asking again at once would only hold the next
      // finish behind an empty round trip; wait for a wake (new work) or a kick (a task ended).
      this.#drained = result.reserved.length < free
      if (this.#drained && this.#done.length === 0 && this.host.state() === 'running') {
        // A wait that ended while the loop was busy (a kick won the race) may have taken the only
        // wake marker for work that arrived after that exchange: look again before waiting.
        if (this.#woke) {
          this.#woke = false
          continue
        }
        await this.#waitOrKick(result.nextDueIn)
      }
    }
  }

  /** Starts waiting for work (a wake, a handover, or `ms`) unless a wait is under way. */
  #arm(ms: number): void {
    this.#waiting ??= this.host.backend
      .waitForWork(this.host.queue, this.id, ms, this.#abort.signal)
      .then(handed => {
        this.#waiting = undefined
        this.#woke = handed.length === 0
        this.#handed = handed.length > 0
        return this.#accept(handed)
      })
  }

  /** Waits for work (a wake, a handover, `dueIn` ms) or a kick (a task ended), whichever first. */
  async #waitOrKick(dueIn: number | undefined): Promise<void> {
    const blockTimeout = this.host.blockTimeout
    this.#arm(Math.min(blockTimeout, dueIn ?? Infinity))
    // A wait armed earlier may run longer than the next delayed task is due.
    let timer: NodeJS.Timeout | undefined
    const due =
      dueIn !== undefined && dueIn < blockTimeout
        ? new Promise<void>(r => (timer = setTimeout(r, dueIn)))
        : undefined
    await Promise.race(
      due ? [this.#waiting, this.#nextKick(), due] : [this.#waiting, this.#nextKick()],
    )
    clearTimeout(timer)
    if (this.#waiting === undefined) this.#woke = false // the wait ended: this pass exchanges
  }

  /**
   * Takes reserved tasks: into the slots while running, released unrun when stopping. With a
   * worker heartrate shorter than some task's own, their leases are cut by a renewal first: the
   * promise returned then settles once they are taken (else nothing is returned: the hot path
   * awaits nothing).
   */
  #accept(tasks: readonly ReservedTask[]): Promise<void> | undefined {
    if (tasks.length === 0) return
    const heard = this.slots.heardBefore(tasks)
    if (heard.length > 0) {
      tasks = tasks.filter(task => !heard.includes(task))
      this.#renewFirst(heard, 'task:cancelled')
      if (tasks.length === 0) return
    }
    const cap = this.host.heartrate
    // The whole batch waits for the cut, so that its tasks still start in the order reserved.
    if (cap !== undefined && tasks.some(task => task.heartrate > cap))
      return this.#renewFirst(tasks, 'lease:lost')
    this.#admit(tasks)
  }

  /** Starts reserved tasks while running; releases them unrun when stopping. */
  #admit(tasks: readonly ReservedTask[]): void {
    if (tasks.length === 0) return
    if (this.host.state() === 'running') {
      this.slots.add(tasks)
      return
    }
    // Reserved while stopping: release it unrun rather than start what nobody will finish.
    this.finished(tasks.map(t => ({ id: t.id, token: t.token, outcome: '', release: true })))
  }

  /**
   * Renews reserved tasks' leases (at the worker's heartrate, where it is shorter than theirs)
   * before they start, and starts those whose lease still holds. Used for tasks whose cancel was
   * heard before their reservation (a lost lease: the cancel ended this very run, reported as
   * `task:cancelled`) and for cutting leases to the worker's heartrate (reported as `lease:lost`).
   * Should the backend not answer, they start, and the lease keeper finds out as for any run.
   */
  #renewFirst(
    tasks: readonly ReservedTask[],
    lostEvent: 'task:cancelled' | 'lease:lost',
  ): Promise<void> {
    const { backend, queue } = this.host
    const leases = tasks.map(t => this.leases.lease(t))
    const checked = backend
      .renew(queue, leases)
      .catch(() => [] as string[])
      .then(lost => {
        const gone = new Set(lost)
        for (const { id, name } of tasks) {
          if (!gone.has(id)) continue
          if (lostEvent === 'lease:lost') this.host.emit('lease:lost', { id, queue })
          else this.host.emit('task:cancelled', { id, name, queue })
        }
        this.#admit(tasks.filter(task => !gone.has(task.id)))
      })
      .finally(() => this.#rechecks.delete(checked))
    this.#rechecks.add(checked)
    return checked
  }

  #nextKick(): Promise<void> {
    return new Promise(resolve => (this.#kick = resolve))
  }
}

function delay(ms: number): Promise<void> {
  return new Promise(r => setTimeout(r, ms))
}
