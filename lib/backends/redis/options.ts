/** The options of a RedisBackend, as lib/backends/index.ts builds them from `getBroker`'s. */
import type { BackendLimits } from '../backend.js'
import type { Liveness } from './connections.js'
import type { WakerTiming } from './waker.js'

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
  /** How long a call waits for a server that is away before BackendUnreachable (reach.ts). @default 10_000 */
  connectTimeoutMs?: number
}
