import { expect } from 'chai'
import { BadUrl, getBroker } from '../../lib/index.js'
import { connectionTopology, parseTopology } from '../../lib/backends/redis/topology.js'

function badPart(url: string): string {
  try {
    parseTopology(url)
  } catch (err) {
    expect(err).to.be.instanceOf(BadUrl).with.property('code', 'ERR_WORQ_BAD_URL')
    return (err as Error).message
  }
  throw new Error(`${url} was accepted`)
}

describe('redis-cluster:// and redis-sentinel:// URLs', () => {
  it('a cluster URL gives seed nodes, credentials, TLS and Cluster options', () => {
    expect(parseTopology('redis-cluster://h1:7000,h2:7001,[::1]:7002')).to.deep.equal({
      kind: 'cluster',
      nodes: [
        { host: 'h1', port: 7000 },
        { host: 'h2', port: 7001 },
        { host: '::1', port: 7002 },
      ],
      options: { redisOptions: {} },
    })
    expect(
      parseTopology(
        'rediss-cluster://u:p%40ss@h1:7000/?maxRedirections=5&slotsRefreshInterval=2000&connectTimeout=300',
      ),
    ).to.deep.equal({
      kind: 'cluster',
      nodes: [{ host: 'h1', port: 7000 }],
      options: {
        maxRedirections: 5,
        slotsRefreshInterval: 2000,
        redisOptions: { username: 'u', password: 'p@ss', tls: {}, connectTimeout: 300 },
      },
    })
    expect(parseTopology('redis-cluster://h1')).to.have.nested.property('nodes[0].port', 6379)
  })

  it('a sentinel URL gives the sentinels, the master name, the database and credentials', () => {
    expect(parseTopology('redis-sentinel://:pw@s1:26379,s2:26380/mymaster/2')).to.deep.equal({
      kind: 'single',
      options: {
        password: 'pw',
        sentinels: [
          { host: 's1', port: 26379 },
          { host: 's2', port: 26380 },
        ],
        name: 'mymaster',
        db: 2,
      },
    })
    expect(
      parseTopology('redis-sentinel://s1/m?sentinelPassword=sp&connectTimeout=100'),
    ).to.deep.equal({
      kind: 'single',
      options: {
        sentinels: [{ host: 's1', port: 26379 }],
        name: 'm',
        db: 0,
        sentinelPassword: 'sp',
        connectTimeout: 100,
      },
    })
  })

  it('a bad URL is a BadUrl naming the part to change', () => {
    expect(badPart('redis-cluster://h1:7000,h2:99999')).to.match(/port "99999" of host "h2"/)
    expect(badPart('redis-cluster://h1:x')).to.match(/port "x"/)
    expect(badPart('redis-cluster://')).to.match(/no host:port/)
    expect(badPart('redis-cluster://h1:7000/3')).to.match(/path "\/3".*database 0 only/)
    expect(badPart('redis-cluster://h1?scaleReads=all')).to.match(
      /query option "scaleReads" is not supported; use maxRedirections/,
    )
    expect(badPart('redis-cluster://h1?maxRedirections=many')).to.match(
      /"maxRedirections=many" is not a whole number/,
    )
    expect(badPart('redis-sentinel://s1:26379')).to.match(/master name is missing/)
    expect(badPart('redis-sentinel://s1:26379/')).to.match(/master name is missing/)
    expect(badPart('redis-sentinel://s1:26379/m/x')).to.match(/database "x" is not an integer/)
    expect(badPart('redis-sentinel://s1:26379/m/1/2')).to.match(/database "1\/2"/)
    expect(badPart('redis-sentinel://s1/m#frag')).to.match(/#fragment/)
    expect(badPart('redis-sentinel://s1/m?role=slave')).to.match(/query option "role"/)
    // An @ left unencoded in a password: refused, and no part of the password in the message.
    const at = badPart('redis-cluster://u:sekret@xyz@h:1')
    expect(at).to.match(/percent-encode an @ there as %40/)
    expect(at).to.not.match(/sekret|xyz/)
    // A trailing slash after the master name names no database: the default.
    expect(parseTopology('redis-sentinel://s1:26379/m/').options).to.include({ name: 'm', db: 0 })
  })

  it('getBroker checks the URL at once; the redis option merges Cluster options', () => {
    expect(() => getBroker('redis-sentinel://127.0.0.1:1', 'q')).to.throw(BadUrl, /master name/)
    expect(() => getBroker('redis-cluster://127.0.0.1:0', 'q')).to.throw(BadUrl, /port "0"/)
    const t = connectionTopology('redis-cluster://h:1', {
      natMap: { 'a:1': { host: 'b', port: 2 } },
      redisOptions: { password: 'x', keyPrefix: 'no:' },
      lazyConnect: true,
    })
    expect(t).to.deep.equal({
      kind: 'cluster',
      nodes: [{ host: 'h', port: 1 }],
      options: { natMap: { 'a:1': { host: 'b', port: 2 } }, redisOptions: { password: 'x' } },
    })
    // Node connection options given as on one server go to every node (redisOptions win).
    const tls = connectionTopology('rediss-cluster://u@h:1', {
      tls: { ca: 'CA' },
      password: 'p',
      scaleReads: 'master',
      redisOptions: { password: 'q' },
    })
    expect(tls.options).to.deep.equal({
      scaleReads: 'master',
      redisOptions: { username: 'u', tls: { ca: 'CA' }, password: 'q' },
    })
  })

  it('replicas must be a whole number; replicaTimeoutMs at least 1', () => {
    expect(() => getBroker('redis://127.0.0.1:1/0', 'q', { replicas: -1 })).to.throw(
      TypeError,
      /Expected `replicas` to be a whole number/,
    )
    expect(() => getBroker('redis://127.0.0.1:1/0', 'q', { replicas: 1.5 })).to.throw(TypeError)
    expect(() =>
      getBroker('redis://127.0.0.1:1/0', 'q', { replicas: 1, replicaTimeoutMs: 0 }),
    ).to.throw(TypeError, /Expected `replicaTimeoutMs` to be a whole number of ms/)
  })

  it('connectTimeoutMs must be a whole number of ms from 1 to a timer’s limit, on every backend', () => {
    for (const url of ['redis://127.0.0.1:1/0', 'postgres://u@127.0.0.1:1/d', 'memory://'])
      for (const connectTimeoutMs of [0, -5, 1.5, Number.NaN, Infinity, 2 ** 31])
        expect(() => getBroker(url, 'q', { connectTimeoutMs })).to.throw(
          TypeError,
          /Expected `connectTimeoutMs` to be a whole number of ms from 1 to 2147483647/,
        )
  })

  it('unknown options, and values a backend cannot use, are TypeErrors that name them', () => {
    const url = 'redis://127.0.0.1:1/0'
    const bad: Array<[unknown, RegExp]> = [
      [null, /Expected `options` to be an object/],
      [{ conectTimeoutMs: 5 }, /Unknown backend option `conectTimeoutMs`/],
      [{ maxPayloadBytes: Number.NaN }, /`maxPayloadBytes`/],
      [{ maxPayloadBytes: -1 }, /`maxPayloadBytes`/],
      [{ maxPayloadBytes: 'big' }, /`maxPayloadBytes`/],
      [{ watchdog: { pingMs: 0 } }, /`watchdog.pingMs`/],
      [{ watchdog: { pingMs: 1e12 } }, /`watchdog.pingMs`/],
      [{ watchdog: { ping: 5 } }, /Unknown `watchdog` field `ping`/],
      [{ redisFunctions: 'no' }, /`redisFunctions`/],
    ]
    for (const [options, message] of bad)
      expect(() => getBroker(url, 'q', options as object), JSON.stringify(options)).to.throw(
        TypeError,
        message,
      )
  })
})
