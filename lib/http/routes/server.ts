/**
 * The server routes: health (each backend answers within a timeout), the page's configuration,
 * Prometheus metrics and the OpenAPI document.
 */
import { createRequire } from 'node:module'
import type { Broker } from '../../index.js'
import { PROMETHEUS_CONTENT_TYPE, prometheusMetrics } from '../../metrics/index.js'
import { openApiDocument } from '../openapi.js'
import { redactUrl } from '../redact-url.js'
import type { Route } from '../router.js'
import type { ConfigJson, HealthJson } from '../types.js'

// lib/http/routes and dist/http/routes are both three levels below the package's root.
const { version } = createRequire(import.meta.url)('../../../package.json') as { version: string }

/** ms the backend of `broker` took to answer, or rejects (also after `timeoutMs`). */
async function ping(broker: Broker, timeoutMs: number): Promise<number> {
  const start = performance.now()
  let timer: NodeJS.Timeout | undefined
  try {
    await Promise.race([
      broker.isPaused(),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error('timeout')), timeoutMs)
      }),
    ])
  } finally {
    clearTimeout(timer)
  }
  return performance.now() - start
}

export const serverRoutes: Route[] = [
  {
    method: 'GET',
    path: '/api/health',
    query: [],
    change: false,
    async handle({ served }) {
      const brokers = [...served.brokers.values()]
      const results = await Promise.allSettled(
        brokers.map(b => ping(b, served.options.healthTimeoutMs)),
      )
      const ok = results.every(r => r.status === 'fulfilled')
      const body: HealthJson = {
        ok,
        backend: [...new Set(brokers.map(b => redactUrl(b.url)))].join(', '),
        latencyMs:
          Math.round(
            Math.max(
              ...results.map(r =>
                r.status === 'fulfilled' ? r.value : served.options.healthTimeoutMs,
              ),
            ) * 10,
          ) / 10,
      }
      return { status: ok ? 200 : 503, body }
    },
  },
  {
    method: 'GET',
    path: '/api/config',
    query: [],
    change: false,
    async handle({ served }) {
      const body: ConfigJson = { queues: served.names, readOnly: served.options.readOnly, version }
      return { body }
    },
  },
  {
    method: 'GET',
    path: '/api/openapi.json',
    query: [],
    change: false,
    async handle() {
      return { body: openApiDocument(version) }
    },
  },
  {
    method: 'GET',
    path: '/metrics',
    query: [],
    change: false,
    async handle({ served }) {
      return {
        text: await prometheusMetrics([...served.brokers.values()]),
        headers: { 'Content-Type': PROMETHEUS_CONTENT_TYPE },
      }
    },
  },
]
