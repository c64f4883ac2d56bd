/**
 * The OpenAPI document: a well-kept validator (@readme/openapi-parser, OpenAPI 3.1, offline)
 * accepts it, it lists exactly the routes of the route table with their parameters, and a walk
 * through every operation on a live server gets answers whose status the document lists and whose
 * JSON has the shape it describes.
 */
import { validate } from '@readme/openapi-parser'
import { expect } from 'chai'
import { routeTable } from '../../lib/http/routes/index.js'
import type { Route } from '../../lib/http/router.js'
import { serveApi, type ApiFixture } from '../helpers/http-fixture.js'
import { until } from '../helpers/util.js'

type Schema = Record<string, any>
type Doc = {
  paths: Record<string, Record<string, any>>
  components: { schemas: Record<string, Schema> }
}

/** Checks `value` against the parts of JSON Schema the document uses; returns what differs. */
function mismatches(doc: Doc, schema: Schema | undefined, value: unknown, at = '$'): string[] {
  if (!schema) return []
  if (schema.$ref)
    return mismatches(doc, doc.components.schemas[schema.$ref.split('/').pop()], value, at)
  if (schema.oneOf) {
    const fits = (schema.oneOf as Schema[]).filter(s => mismatches(doc, s, value, at).length === 0)
    return fits.length === 1 ? [] : [`${at}: fits ${fits.length} of the oneOf schemas, not one`]
  }
  const out: string[] = []
  const types = schema.type === undefined ? undefined : [schema.type].flat()
  const kind =
    value === null
      ? 'null'
      : Array.isArray(value)
        ? 'array'
        : Number.isInteger(value)
          ? 'integer'
          : typeof value
  if (types && !types.some((t: string) => t === kind || (t === 'number' && kind === 'integer')))
    out.push(`${at}: expected ${types.join('|')}, got ${kind}`)
  if (schema.enum && !schema.enum.includes(value))
    out.push(`${at}: ${JSON.stringify(value)} is not in the enum`)
  if (schema.const !== undefined && schema.const !== value)
    out.push(`${at}: expected ${schema.const}`)
  if (kind === 'array' && schema.items)
    (value as unknown[]).forEach((v, i) =>
      out.push(...mismatches(doc, schema.items, v, `${at}[${i}]`)),
    )
  if (kind === 'object') {
    const o = value as Record<string, unknown>
    for (const k of schema.required ?? []) if (!(k in o)) out.push(`${at}: missing ${k}`)
    for (const [k, v] of Object.entries(o)) {
      if (schema.properties?.[k])
        out.push(...mismatches(doc, schema.properties[k], v, `${at}.${k}`))
      else if (schema.additionalProperties === false) out.push(`${at}: unexpected ${k}`)
      else if (typeof schema.additionalProperties === 'object')
        out.push(...mismatches(doc, schema.additionalProperties, v, `${at}.${k}`))
    }
  }
  return out
}

/** The operations the API answers: the route table's, and a HEAD beside each GET. */
function operations(): Array<Pick<Route, 'path' | 'query' | 'change'> & { method: string }> {
  return routeTable({ ends: new Set(), closed: false }).flatMap(r =>
    r.method === 'GET' ? [r, { ...r, method: 'HEAD' }] : [r],
  )
}

describe('http: the OpenAPI document', function () {
  let api: ApiFixture
  let doc: Doc
  before(async () => {
    api = await serveApi('memory://')
    doc = (await api.server.call('GET', '/api/openapi.json')).json
  })
  after(() => api.close())

  it('is valid OpenAPI 3.1 by @readme/openapi-parser, and the validator does reject a broken one', async () => {
    expect(doc).to.include({ openapi: '3.1.0' })
    const result = await validate(structuredClone(doc) as never)
    expect(result, JSON.stringify(result)).to.include({ valid: true })
    expect(result.warnings).to.deep.equal([])
    const broken = structuredClone(doc) as any
    broken.paths['/api/queues'].get.responses['200'].content['application/json'].schema = {
      $ref: '#/components/schemas/Nothing',
    }
    expect(await validate(broken)).to.include({ valid: false })
  })

  it('lists exactly the routes of the route table (and a HEAD for each GET), with their path and query parameters', () => {
    const inDoc = Object.entries(doc.paths).flatMap(([path, ops]) =>
      Object.keys(ops).map(m => `${m.toUpperCase()} ${path}`),
    )
    const inTable = operations().map(r => `${r.method} ${r.path.replace(/:(\w+)/g, '{$1}')}`)
    expect([...inDoc].sort()).to.deep.equal([...inTable].sort())
    for (const r of operations()) {
      const op = doc.paths[r.path.replace(/:(\w+)/g, '{$1}')]![r.method.toLowerCase()]
      const params = op.parameters as Array<{ name: string; in: string }>
      const where = `${r.method} ${r.path}`
      expect(
        params
          .filter(p => p.in === 'query')
          .map(p => p.name)
          .sort(),
        where,
      ).to.deep.equal([...r.query].sort())
      expect(
        params
          .filter(p => p.in === 'path')
          .map(p => p.name)
          .sort(),
        where,
      ).to.deep.equal([...r.path.matchAll(/:(\w+)/g)].map(m => m[1]).sort())
      expect(op.responses['400'], where).to.be.an('object')
      if (r.method !== 'GET' && r.method !== 'HEAD') expect(r.change, where).to.equal(true)
    }
    // A HEAD is its GET without bodies.
    for (const [path, ops] of Object.entries(doc.paths)) {
      if (!ops.get) continue
      expect(ops.head.parameters, path).to.deep.equal(ops.get.parameters)
      expect(Object.keys(ops.head.responses), path).to.deep.equal(Object.keys(ops.get.responses))
      for (const answer of Object.values(ops.head.responses))
        expect(answer, path).to.not.have.property('content')
    }
  })

  it('every operation lists the 400, 405, 500 and 503 any route can answer (the 405 with Allow)', () => {
    let count = 0
    for (const [path, ops] of Object.entries(doc.paths))
      for (const [method, op] of Object.entries(ops)) {
        const where = `${method.toUpperCase()} ${path}`
        for (const status of ['400', '405', '500', '503'])
          expect(op.responses[status], `${where} ${status}`).to.be.an('object')
        expect(op.responses['405'].headers?.Allow, where).to.be.an('object')
        count++
      }
    expect(count).to.equal(operations().length)
    // A route's own 503 is kept: the health check's carries its body.
    expect(
      doc.paths['/api/health']!.get.responses['503'].content['application/json'].schema,
    ).to.deep.equal({ $ref: '#/components/schemas/Health' })
  })

  it('a 201 of a submit or a retry is the Task, or only { id, queue } when its record went first', () => {
    for (const [path, method] of [
      ['/api/tasks', 'post'],
      ['/api/tasks/{id}/retry', 'post'],
    ] as const) {
      const schema = doc.paths[path]![method].responses['201'].content['application/json'].schema
      expect(mismatches(doc, schema, { id: 'x', queue: 'q' }), path).to.deep.equal([])
      expect(mismatches(doc, schema, { id: 'x' }), path).to.not.deep.equal([])
      expect(mismatches(doc, schema, { id: 'x', queue: 'q', extra: 1 }), path).to.not.deep.equal([])
      expect(doc.paths[path]![method].responses['504'], `${path} 504`).to.be.an('object')
    }
  })

  it("each integer query parameter has the server's bounds: its maximum is taken, one past either end refused", async () => {
    let checked = 0
    for (const [path, ops] of Object.entries(doc.paths)) {
      const params = (ops.get?.parameters ?? []) as Array<{
        name: string
        in: string
        schema: Schema
      }>
      for (const p of params.filter(p => p.in === 'query' && p.schema.type === 'integer')) {
        const where = `GET ${path}?${p.name}`
        expect(p.schema.minimum, where).to.be.a('number')
        expect(p.schema.maximum, where).to.be.a('number')
        const at = async (n: number) =>
          (await api.server.call('GET', `${path}?${p.name}=${n}`)).status
        expect(await at(p.schema.maximum), `${where}=${p.schema.maximum}`).to.equal(200)
        expect(await at(p.schema.maximum + 1), `${where}=${p.schema.maximum + 1}`).to.equal(400)
        expect(await at(p.schema.minimum - 1), `${where}=${p.schema.minimum - 1}`).to.equal(400)
        checked++
      }
    }
    expect(checked).to.equal(3) // limit, offset, minutes
  })

  it('every operation answers, on a live server, with a status the document lists and the shape it describes', async () => {
    const queue = api.broker.name
    const q = api.broker.queue()
    const done = await q.t.add(1, 2)
    const failed = await q.t.fails('no')
    await until(
      async () => (await failed.status()) === 'failed' && (await done.status()) === 'completed',
      5000,
      'the tasks',
    )
    const values: Record<string, string> = { id: done.id, name: queue }
    const special: Record<string, { path?: string; json?: unknown }> = {
      'POST /api/tasks': { json: { name: 't.add', args: [2, 3] } },
      'POST /api/tasks/{id}/retry': { path: `/api/tasks/${failed.id}/retry` },
      'DELETE /api/queues/{name}/tasks': { path: `/api/queues/${queue}/tasks?confirm=${queue}` },
      'GET /api/tasks': { path: '/api/tasks?status=completed,failed&limit=10' },
    }
    let walked = 0
    for (const [path, ops] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(ops)) {
        const key = `${method.toUpperCase()} ${path}`
        const s = special[key] ?? {}
        const url =
          s.path ?? path.replace(/\{(\w+)\}/g, (_, n: string) => encodeURIComponent(values[n]!))
        if (method === 'head') {
          const r = await api.server.call('HEAD', url)
          expect(op.responses[String(r.status)], `${key} answered ${r.status}`).to.be.an('object')
          expect(r.text, key).to.equal('')
          walked++
          continue
        }
        if (path === '/api/events') {
          const res = await fetch(api.server.base + url, { signal: AbortSignal.timeout(2000) })
          expect(res.status).to.equal(200)
          expect(Object.keys(op.responses['200'].content)).to.deep.equal(['text/event-stream'])
          await res.body!.cancel()
          walked++
          continue
        }
        const r = await api.server.call(
          method.toUpperCase(),
          url,
          s.json === undefined ? {} : { json: s.json },
        )
        const documented = op.responses[String(r.status)]
        expect(documented, `${key} answered ${r.status}: ${r.text.slice(0, 200)}`).to.be.an(
          'object',
        )
        const content = documented.content?.['application/json']
        if (content) expect(mismatches(doc, content.schema, r.json), key).to.deep.equal([])
        else expect(r.headers['content-type'], key).to.match(/^text\/plain/)
        walked++
      }
    }
    expect(walked).to.equal(operations().length)
  })
})
