import { expect } from 'chai'
import { BadUrl, getBroker } from '../../lib/index.js'
import { parseRedisUrl } from '../../lib/backends/redis/url.js'
import { redactUrl } from '../../lib/redact-url.js'
import { connectionTopology } from '../../lib/backends/redis/topology.js'

const connectionBase = (raw: string, redis?: object) => connectionTopology(raw, redis).options

describe('redis: URLs', () => {
  it('reads host, port, db, user and password; no /db means db 0', () => {
    expect(parseRedisUrl('redis://h:7000/3')).to.deep.equal({ host: 'h', port: 7000, db: 3 })
    expect(parseRedisUrl('redis://h')).to.deep.equal({ host: 'h', port: 6379, db: 0 })
    expect(parseRedisUrl('redis://u:p%40ss@[::1]:1/')).to.deep.equal({
      host: '::1',
      port: 1,
      db: 0,
      username: 'u',
      password: 'p@ss',
    })
    expect(parseRedisUrl('rediss://:secret@h/2')).to.deep.equal({
      host: 'h',
      port: 6379,
      db: 2,
      password: 'secret',
      tls: {},
    })
  })

  it('a bad URL throws BadUrl naming the wrong part', () => {
    const bad = (url: string, part: RegExp) => {
      const err = (() => {
        try {
          parseRedisUrl(url)
        } catch (e) {
          return e
        }
      })()
      expect(err, url).to.be.instanceOf(BadUrl)
      expect((err as BadUrl).code).to.equal('ERR_WORQ_BAD_URL')
      expect((err as BadUrl).message).to.match(part)
    }
    bad('redis://h:6379/zero', /database "zero" is not an integer/)
    bad('redis://h:6379/1.5', /database "1.5" is not an integer/)
    bad('redis://h:99999/0', /port "99999" is not a number from 1 to 65535/)
    bad('redis://h:0/0', /port "0"/)
    bad('redis://h:6379/0?family=6', /query parameters/)
  })

  it('redacts the passwords (of a cluster or sentinel URL too), and the redis option merges over the URL', () => {
    expect(redactUrl('redis://u:secret@h:1/0')).to.equal('redis://u:***@h:1/0')
    expect(redactUrl('redis://h:1/0')).to.equal('redis://h:1/0')
    expect(redactUrl('redis-cluster://u:pw@h:1,h:2')).to.equal('redis-cluster://u:***@h:1,h:2')
    expect(
      redactUrl('redis-sentinel://:pw@h:1,h:2/m?sentinelUsername=u&sentinelPassword=pw'),
    ).to.equal('redis-sentinel://:***@h:1,h:2/m?sentinelUsername=u&sentinelPassword=***')
    const o = connectionBase('redis://h:1/2', { db: 5, keyPrefix: 'x:', connectTimeout: 50 })
    expect(o).to.deep.equal({ host: 'h', port: 1, db: 5, connectTimeout: 50 })
    const like = { options: { host: 'other', port: 2 }, duplicate() {} }
    expect(connectionBase('redis://h:1/2', like)).to.deep.equal({ host: 'other', port: 2 })
  })

  it('getBroker with a bad port or database throws BadUrl naming the part', () => {
    expect(() => getBroker('redis://127.0.0.1:1/nope', 'q'))
      .to.throw(BadUrl, /database "nope" is not an integer/)
      .with.property('code', 'ERR_WORQ_BAD_URL')
    expect(() => getBroker('redis://127.0.0.1:99999/0', 'q')).to.throw(BadUrl, /port "99999"/)
  })
})
