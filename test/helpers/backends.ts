import { redisUrl } from './redis-server.js'

/**
 * The backend URLs the contract suite runs against: memory:// always, and a private Redis.
 */
export interface BackendCase {
  name: string
  url: () => Promise<string>
}

export const backends: BackendCase[] = [
  { name: 'memory', url: async () => 'memory://' },
  { name: 'redis', url: redisUrl },
]
