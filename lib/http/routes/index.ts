/** Every route of the API, in one table (the OpenAPI test walks it). */
import type { Route } from '../router.js'
import { eventRoute, type Clients } from '../sse.js'
import { queueRoutes } from './queues.js'
import { serverRoutes } from './server.js'
import { taskRoutes } from './tasks.js'

/** The route table of one handler, whose event streams are kept in `clients`. */
export function routeTable(clients: Clients): Route[] {
  return [...serverRoutes, ...queueRoutes, ...taskRoutes, eventRoute(clients)]
}
