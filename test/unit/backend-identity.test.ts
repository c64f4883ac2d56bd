/**
 * Which spellings of a backend URL reach the same data (lib/backends/identity.ts): worq/metrics
 * compared URLs as written, so `redis://h` and `redis://h:6379/0` were two backends.
 */
import { expect } from 'chai'
import { backendIdentity } from '../../lib/backends/identity.js'

/** Each group: URLs of one backend. Every group is a different backend from every other. */
const GROUPS: string[][] = [
  [
    'redis://h',
    'redis://h:6379',
    'redis://h:6379/0',
    'redis://H:6379/0',
    'REDIS://h/',
    'redis://user:secret@h/0',
    'redis://:other@h:6379',
  ],
  ['redis://h/1', 'redis://h:6379/1', 'redis://u:p@H/1'],
  ['redis://h:6380', 'redis://h:6380/0'],
  ['redis://other'],
  ['redis://', 'redis://127.0.0.1:6379/0'],
  ['redis://[::1]', 'redis://[::1]:6379/0'],
  // Not resolved: localhost may reach ::1 or 127.0.0.1, which can be two servers.
  ['redis://localhost', 'redis://LOCALHOST:6379/0'],
  ['postgres://u@localhost/db'],
  ['postgres://u@127.0.0.1/db'],
  ['rediss://h', 'rediss://h:6379/0', 'rediss://u:p@H:6379'],
  [
    'redis-cluster://a:7000,b:7001',
    'redis-cluster://B:7001,a:7000',
    'redis-cluster://u:p@a:7000,b:7001/?maxRedirections=3',
  ],
  ['redis-cluster://a,b', 'redis-cluster://a:6379,b:6379/'],
  ['redis-sentinel://s1,s2/mymaster', 'redis-sentinel://S2:26379,s1:26379/mymaster/0'],
  ['redis-sentinel://s1,s2/mymaster/1'],
  ['redis-sentinel://s1,s2/other'],
  [
    'postgres://u@h/db',
    'postgres://u@h:5432/db',
    'postgresql://v:secret@H:5432/db',
    'postgres://u@h/db?schema=worq&pool=3&prepare=false&sslmode=require&application_name=x',
  ],
  ['postgres://u@h/db?schema=other'],
  ['postgres://u@h/other'],
  ['postgres://u@h:5433/db'],
  ['memory://'],
  ['memory:///'],
  ['memory://a'],
  ['MEMORY://a'],
]

describe('backend identity: which URLs reach the same backend', () => {
  it('redis://h and redis://h:6379/0 were two backends: spellings of one backend are one identity', () => {
    for (const group of GROUPS) {
      const ids = new Set(group.map(backendIdentity))
      expect([...ids], group.join(' ')).to.have.length(1)
    }
  })

  it('different backends keep different identities (a memory:// URL counts as written)', () => {
    const ids = GROUPS.map(g => backendIdentity(g[0]!))
    expect(new Set(ids).size).to.equal(GROUPS.length)
  })

  it('a URL no backend reads is its own identity, not a throw', () => {
    for (const url of ['nope://x', 'redis://h:99999', 'postgres://h/db?x=1', 'plain'])
      expect(backendIdentity(url)).to.equal(url)
  })

  it('no identity carries a credential', () => {
    for (const url of GROUPS.flat()) expect(backendIdentity(url)).not.to.match(/secret|other@|u:p/)
  })

  it('a postgres:// URL without a database names the one node-postgres connects to', () => {
    const saved = { PGDATABASE: process.env.PGDATABASE, PGUSER: process.env.PGUSER }
    try {
      delete process.env.PGDATABASE
      delete process.env.PGUSER
      // The database named for the user.
      expect(backendIdentity('postgres://alice@h')).to.equal(
        backendIdentity('postgres://alice@h/alice'),
      )
      expect(backendIdentity('postgres://alice@h')).not.to.equal(
        backendIdentity('postgres://bob@h'),
      )
      process.env.PGUSER = 'carol'
      expect(backendIdentity('postgres://h')).to.equal(backendIdentity('postgres://h/carol'))
      process.env.PGDATABASE = 'app'
      expect(backendIdentity('postgres://alice@h')).to.equal(backendIdentity('postgres://h/app'))
    } finally {
      for (const [k, v] of Object.entries(saved))
        if (v === undefined) delete process.env[k]
        else process.env[k] = v
    }
  })
})
