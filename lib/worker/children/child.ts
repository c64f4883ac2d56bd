/**
 * One child process as the parent sees it: forks child-main with the tasks module, knows when it is
 * ready, which tasks it runs and how many it ran, and ends it (IPC disconnect, then SIGKILL).
 */
import { fork, type ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import type { ReservedTask, Finish } from '../../backends/backend.js'
import type { RemoteError } from '../../errors.js'
import type { RunEnv } from '../execute.js'
import type { ChildConfig, ChildMessage, ParentMessage } from './protocol.js'

/** The entry file next to this one: child-main.ts under tsx (sources), child-main.js from dist. */
const ENTRY = fileURLToPath(
  new URL(import.meta.url.endsWith('.ts') ? './child-main.ts' : './child-main.js', import.meta.url),
)

/** A task given to the executor, from `run` until its Finish. */
export interface Run {
  task: ReservedTask
  queue: string
  env: RunEnv
  settle(finish: Finish): void
  /** The child running it, once dispatched. */
  child?: Child
  /** Fires at timeout + grace: the child did not answer. */
  timer?: NodeJS.Timeout
  /** Fires `killGrace` ms after the run's signal aborted (a cancel, a lost lease) if it has not ended. */
  abortTimer?: NodeJS.Timeout
}

/** Where a child is in its life. */
export type ChildState = 'starting' | 'ready' | 'retiring' | 'ending' | 'dead'

/** How to fork a child. */
export interface ForkSpec {
  moduleUrl: string
  execArgv: string[]
  config: ChildConfig
}

/** What a child reports to its executor. */
export interface ChildHooks {
  message(child: Child, msg: ChildMessage): void
  exit(child: Child, code: number | null, signal: NodeJS.Signals | null): void
}

/** A forked child process. */
export class Child {
  readonly proc: ChildProcess
  readonly pid: number
  state: ChildState = 'starting'
  /** Tasks sent to it so far. */
  dispatched = 0
  /** Tasks it runs now, by id. */
  readonly runs = new Map<string, Run>()
  /** The last uncaught error it reported before exiting. */
  crash: { origin: string; error: RemoteError } | undefined
  /** Why the parent ended or killed it, when it did. */
  endReason: 'recycled' | 'timeout' | 'stopped' | undefined
  /** Why it could not load the tasks module, when it said so (it exits next). */
  loadError: RemoteError | undefined
  /** It said it was ready (loaded the tasks module) at some point. */
  wasReady = false
  /** Resolves with the exposed task names once loaded; rejects with why it could not load. */
  readonly ready: Promise<string[]>
  /** Resolves when the process has exited. */
  readonly exited: Promise<void>
  #killTimer: NodeJS.Timeout | undefined

  constructor(spec: ForkSpec, hooks: ChildHooks) {
    this.proc = fork(ENTRY, [spec.moduleUrl, JSON.stringify(spec.config)], {
      execArgv: spec.execArgv,
      serialization: 'advanced',
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    })
    this.pid = this.proc.pid ?? -1
    let ready!: (names: string[]) => void
    let notReady!: (err: RemoteError) => void
    this.ready = new Promise<string[]>((resolve, reject) => {
      ready = resolve
      notReady = reject
    })
    this.ready.catch(() => undefined)
    this.proc.on('message', (msg: ChildMessage) => {
      if (msg.t === 'ready') {
        this.wasReady = true
        if (this.state === 'starting') this.state = 'ready'
        ready(msg.names)
      } else if (msg.t === 'load-error') {
        this.loadError = msg.error
        notReady(msg.error)
      } else if (msg.t === 'crash') this.crash = { origin: msg.origin, error: msg.error }
      hooks.message(this, msg)
    })
    this.proc.on('error', () => undefined) // e.g. sending to a child that just died: 'exit' follows
    this.exited = new Promise(resolve => {
      this.proc.once('exit', (code, signal) => {
        this.state = 'dead'
        clearTimeout(this.#killTimer)
        notReady(
          this.crash?.error ?? {
            name: 'WorkerCrashed',
            message: `the child process exited (${describeExit(code, signal)}) before it was ready`,
          },
        )
        hooks.exit(this, code, signal)
        resolve()
      })
    })
  }

  /** Sends a message; false when the channel is gone (the exit event follows). */
  send(msg: ParentMessage): boolean {
    if (!this.proc.connected) return false
    try {
      this.proc.send(msg)
      return true
    } catch {
      return false
    }
  }

  /** Ends the child: closes the channel (it exits by itself), SIGKILL after `graceMs`. */
  end(reason: 'recycled' | 'stopped', graceMs: number): Promise<void> {
    if (this.state === 'dead') return this.exited
    this.endReason ??= reason
    this.state = 'ending'
    if (this.proc.connected) this.proc.disconnect()
    this.#killTimer ??= setTimeout(() => this.proc.kill('SIGKILL'), graceMs)
    return this.exited
  }

  /** Kills the child at once. */
  kill(reason: 'timeout' | 'stopped'): void {
    this.endReason ??= reason
    if (this.state !== 'dead') this.state = 'ending'
    this.proc.kill('SIGKILL')
  }
}

/** "code 1", "signal SIGKILL". */
export function describeExit(code: number | null, signal: NodeJS.Signals | null): string {
  return signal ? `killed by ${signal}` : `exit code ${code}`
}
