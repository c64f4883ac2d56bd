import { expect } from 'chai'
import { checkVersion } from '../../lib/backends/redis/checks.js'
import { UnsupportedServer } from '../../lib/index.js'

const info = (version: string) =>
  `# Server\r\nredis_version:${version}\r\nredis_mode:standalone\r\n`

describe('redis: the server version check', () => {
  it('passes 6.2 and newer, and a server that reports no version', () => {
    for (const v of ['6.2.0', '6.2.14', '7.0.15', '7.2.4', '8.0.1', '10.1.0'])
      expect(() => checkVersion(info(v))).to.not.throw()
    expect(() => checkVersion('# Server\r\nredis_mode:standalone\r\n')).to.not.throw()
  })

  it('refuses older servers with UnsupportedServer, naming the version and what to do', () => {
    for (const v of ['6.0.16', '5.0.14', '4.0.9']) {
      const err = (() => {
        try {
          checkVersion(info(v))
        } catch (e) {
          return e
        }
      })()
      expect(err).to.be.instanceOf(UnsupportedServer)
      expect((err as UnsupportedServer).code).to.equal('ERR_WORQ_UNSUPPORTED_SERVER')
      expect((err as Error).message).to.include(`version ${v}`)
      expect((err as Error).message).to.match(/needs Redis 6\.2 or newer: upgrade the server/)
    }
  })
})
