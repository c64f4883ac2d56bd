/**
 * Credentials the server refuses: a wrong Redis password or user, no password for a server that
 * needs one (one server, a Redis Cluster's nodes, the sentinels' own sentinelPassword), a
 * PostgreSQL role that does not exist. Each call fails at once with AuthFailed
 * (`ERR_WORQ_AUTH_FAILED`), whose message says what to change and whose `cause` is the driver's
 * error (a Cluster's: the refusal of the last node it tried). They surfaced as the driver's raw error, or (Redis) as BackendUnreachable once
 * `connectTimeoutMs` had passed, saying to check that the server runs. A PostgreSQL database that
 * does not exist is a BadUrl (`ERR_WORQ_BAD_URL`), as a Redis database number the server lacks is.
 */
import { expect } from 'chai'
import calculateSlot from 'cluster-key-slot'
import { randomBytes } from 'node:crypto'
import { AuthFailed, BadUrl, getBroker, WorkerPool } from '../../lib/index.js'
import { postgresUrl } from '../helpers/postgres.js'
import { startCluster, type RedisCluster } from '../helpers/redis-cluster.js'
import { startSentinels, type SentinelSet } from '../helpers/redis-sentinel.js'
import {
  hasBinary,
  INSTALL,
  onNode,
  startRedis,
  type RedisServer,
} from '../helpers/redis-server.js'
import { uniqueQueue } from '../helpers/util.js'

/** Well within connectTimeoutMs (10 s below): the refusal is not waited out. */
const PROMPT_MS = 3000

/** What each of a broker's first operations rejects with, and how long each took. */
async function failures(url: string): Promise<Array<{ what: string; err: unknown; ms: number }>> {
  const broker = getBroker(url, uniqueQueue('auth'), { connectTimeoutMs: 10_000 })
  const calls: Record<string, () => Promise<unknown>> = {
    enqueue: () => broker.queue().math.add(1, 2),
    'enqueue (ignoreResult)': () => broker.queue('', { ignoreResult: true }).math.add(1, 2),
    size: () => broker.size(),
    'pool start': () => new WorkerPool(broker).start(),
    'events().ready': () => broker.events().ready,
  }
  const out = []
  try {
    for (const [what, call] of Object.entries(calls)) {
      const start = Date.now()
      const err = await call().then(
        () => undefined,
        (e: unknown) => e,
      )
      out.push({ what, err, ms: Date.now() - start })
    }
  } finally {
    await broker.close()
  }
  return out
}

function expectRefused(
  found: Array<{ what: string; err: unknown; ms: number }>,
  fix: RegExp,
  cause: RegExp,
): void {
  for (const { what, err, ms } of found) {
    expect(err, what).to.be.instanceOf(AuthFailed)
    expect(err, what).to.have.property('code', 'ERR_WORQ_AUTH_FAILED')
    expect((err as Error).message, what)
      .to.match(/refused worq's credentials/)
      .and.match(fix)
    expect((err as Error).message, what).not.to.match(/s3cret|wrong-pw/) // credentials redacted
    expect(String((err as Error).cause), what).to.match(cause)
    expect(ms, what).to.be.below(PROMPT_MS)
  }
}

describe('redis: credentials the server refuses', function () {
  let server: RedisServer
  before(async function () {
    if (!hasBinary()) throw new Error(INSTALL)
    server = await startRedis({ args: ['--requirepass', 's3cret'] })
  })
  after(async () => {
    await server?.stop()
  })
  const withAuth = (auth: string) => server.url.replace('redis://', `redis://${auth}@`)

  it('a wrong password surfaced as BackendUnreachable after connectTimeoutMs: AuthFailed at once', async () => {
    expectRefused(
      await failures(withAuth(':wrong-pw')),
      /check the user and password in the URL/,
      // Under load a call's own NOAUTH can arrive before the connection's WRONGPASS (CI, once).
      /WRONGPASS|NOAUTH/,
    )
  })

  it('an unknown user surfaced as BackendUnreachable: AuthFailed at once', async () => {
    expectRefused(
      await failures(withAuth('nobody:s3cret')),
      /check the user and password/,
      /WRONGPASS/,
    )
  })

  it('no password for a server that needs one: AuthFailed saying to give one', async () => {
    expectRefused(await failures(server.url), /the server needs a password/, /NOAUTH/)
  })

  it('the right password runs the queue', async () => {
    const broker = getBroker(withAuth(':s3cret'), uniqueQueue('auth'))
    try {
      expect(await broker.size()).to.equal(0)
    } finally {
      await broker.close()
    }
  })
})

describe('redis cluster: credentials the nodes refuse', function () {
  let cluster: RedisCluster
  before(async function () {
    if (!hasBinary()) throw new Error(INSTALL)
    this.timeout(60_000)
    cluster = await startCluster({ password: 's3cret' })
  })
  after(async () => {
    await cluster?.stop()
  })
  const withAuth = (auth: string) =>
    cluster.url.replace('redis-cluster://', `redis-cluster://${auth}@`)

  it('a wrong password surfaced as BackendUnreachable after connectTimeoutMs: AuthFailed at once', async () => {
    expectRefused(
      await failures(withAuth(':wrong-pw')),
      /check the user and password in the URL \(redis-cluster:\/\/user:password@host:port,host:port/,
      /WRONGPASS/,
    )
  })

  it('an unknown user surfaced as BackendUnreachable: AuthFailed at once', async () => {
    expectRefused(
      await failures(withAuth('nobody:s3cret')),
      /check the user and password/,
      /WRONGPASS/,
    )
  })

  it('no password for nodes that need one: AuthFailed saying to give one', async () => {
    expectRefused(await failures(cluster.url), /the server needs a password/, /NOAUTH/)
  })

  it('the right password runs the queue', async () => {
    const broker = getBroker(withAuth(':s3cret'), uniqueQueue('auth'))
    try {
      const pool = new WorkerPool(broker)
      broker.expose(function add(a: number, b: number) {
        return a + b
      })
      await pool.start()
      expect(await (await broker.queue().add(1, 2)).result(5000)).to.equal(3)
      await pool.stop()
    } finally {
      await broker.close()
    }
  })

  it('a node that refuses once the cluster is ready surfaced as the raw ReplyError: AuthFailed', async () => {
    const queue = uniqueQueue('auth')
    const broker = getBroker(withAuth(':s3cret'), queue)
    const owner = await cluster.ownerOf(calculateSlot(queue))
    try {
      expect(await broker.size()).to.equal(0) // ready, and connected to the queue's node
      // The queue's node takes another password and drops its clients: the broker's connection
      // to it comes back refused, while the cluster stays ready.
      await onNode(
        owner.port,
        async r => {
          await r.config('SET', 'requirepass', 'changed-pw')
          await r.call('CLIENT', 'KILL', 'TYPE', 'normal')
        },
        's3cret',
      )
      const start = Date.now()
      const err = await broker
        .queue()
        .add(1, 2)
        .then(
          () => undefined,
          (e: unknown) => e,
        )
      expect(err).to.be.instanceOf(AuthFailed)
      expect((err as Error).message)
        .to.match(/refused worq's credentials \(WRONGPASS/)
        .and.not.match(/s3cret|changed-pw/)
      expect(String((err as Error).cause)).to.match(/WRONGPASS/)
      expect(Date.now() - start).to.be.below(PROMPT_MS)
    } finally {
      await broker.close()
      await onNode(owner.port, r => r.config('SET', 'requirepass', 's3cret'), 'changed-pw')
    }
  })
})

describe('redis sentinel: a password the sentinels refuse', function () {
  let set: SentinelSet
  before(async function () {
    if (!hasBinary()) throw new Error(INSTALL)
    this.timeout(60_000)
    set = await startSentinels({ sentinelPassword: 's3cret' })
  })
  after(async () => {
    await set?.stop()
  })

  it('a wrong sentinelPassword surfaced as BackendUnreachable, the password in its URL: AuthFailed at once, redacted', async () => {
    expectRefused(
      await failures(`${set.url}?sentinelPassword=wrong-pw`),
      /check sentinelPassword \(and sentinelUsername\) in the URL's query/,
      /All sentinels are unreachable.*WRONGPASS/,
    )
  })

  it('no sentinelPassword for sentinels that need one: AuthFailed saying to give one', async () => {
    expectRefused(
      await failures(set.url),
      /the sentinels need a password: put it in the URL's query/,
      /All sentinels are unreachable.*NOAUTH/,
    )
  })

  it('the right sentinelPassword runs the queue', async () => {
    const broker = getBroker(`${set.url}?sentinelPassword=s3cret`, uniqueQueue('auth'))
    try {
      expect(await broker.size()).to.equal(0)
      const { backend } = await broker.backend()
      expect(backend.url).to.match(/\?sentinelPassword=\*\*\*$/) // redacted, as a password is
    } finally {
      await broker.close()
    }
  })
})

describe('postgres: a role or database the server refuses', function () {
  it('a role that does not exist surfaced as the driver’s raw error: AuthFailed at once', async () => {
    const u = new URL(await postgresUrl())
    u.username = `worq_nobody_${randomBytes(4).toString('hex')}`
    u.password = 'wrong-pw'
    expectRefused(
      await failures(u.toString()),
      /check the user and password in the URL .*or create that role/,
      // trust and peer rules say so; password rules refuse the password instead
      /role "worq_nobody_[0-9a-f]+" does not exist|password authentication failed for user "worq_nobody_/,
    )
  })

  it('a database that does not exist surfaced as the driver’s raw error: BadUrl at once', async () => {
    const u = new URL(await postgresUrl())
    const name = `worq_missing_${randomBytes(4).toString('hex')}`
    u.pathname = `/${name}`
    for (const { what, err, ms } of await failures(u.toString())) {
      expect(err, what).to.be.instanceOf(BadUrl)
      expect(err, what).to.have.property('code', 'ERR_WORQ_BAD_URL')
      expect((err as Error).message, what)
        .to.include(`database "${name}" does not exist`)
        .and.match(/create it \(CREATE DATABASE <name>\) or name one the server has/)
      expect(ms, what).to.be.below(PROMPT_MS)
    }
  })
})
