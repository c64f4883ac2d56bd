/**
 * How long a connection may take to send a request: the settings of a Node `http.Server` that
 * serves worqHttp (`worq dashboard`'s own), and the limit on a body's arrival (the handler's
 * `bodyTimeoutMs`, which works wherever it is mounted). Node's own defaults let a client take
 * 60 s over its headers and 300 s over its request, checked every 30 s: a few slow clients hold
 * connections (and file descriptors) for minutes.
 */
import type { ServerOptions } from 'node:http'

/** The Node server settings of {@link SERVER_TIMEOUTS}. */
export type ServerTimeouts = Required<
  Pick<
    ServerOptions,
    'headersTimeout' | 'requestTimeout' | 'keepAliveTimeout' | 'connectionsCheckingInterval'
  >
>

/**
 * Timeouts for the Node `http.Server` that serves worqHttp: `http.createServer(SERVER_TIMEOUTS,
 * handler)`; `worq dashboard` uses them. Node answers 408 and closes a connection whose headers,
 * or whole request, take longer. `requestTimeout` covers receiving the request only: an event
 * stream (or any answer) may go on for as long as it needs once the request arrived.
 *
 * - `headersTimeout`: 10 000 ms for the request's headers (Node: 60 000).
 * - `requestTimeout`: 30 000 ms for the whole request, headers and body (Node: 300 000); longer
 *   than `headersTimeout` plus the handler's `bodyTimeoutMs` (10 000), so that a slow body gets
 *   the handler's coded 408 first. It stops requests that no route reads the body of.
 * - `keepAliveTimeout`: 5 000 ms an idle keep-alive connection stays open (Node's default).
 * - `connectionsCheckingInterval`: 1 000 ms between Node's checks of the two timeouts above
 *   (Node: 30 000, which lets a timeout pass by up to 30 s).
 */
export const SERVER_TIMEOUTS: Readonly<ServerTimeouts> = Object.freeze({
  headersTimeout: 10_000,
  requestTimeout: 30_000,
  keepAliveTimeout: 5_000,
  connectionsCheckingInterval: 1_000,
})
