/**
 * Passwords in backend URLs, as every surface shows them: one function (lib/redact-url.ts) behind
 * the error messages, `backend.url`, the CLI and the metrics clash, and lib/http's copy of it
 * behind /api/health. Four versions disagreed: two hid the user name too, one missed the
 * redis-cluster:// and redis-sentinel:// schemes, and none hid a `?password=` parameter.
 */
import { expect } from 'chai'
import { hasPassword, redactUrl } from '../../lib/redact-url.js'
import { redactUrl as httpRedactUrl } from '../../lib/http/redact-url.js'
import {
  AuthFailed,
  BackendUnreachable,
  BadUrl,
  getBroker,
  TransactionsUnsupported,
} from '../../lib/index.js'

/** [url, as shown]: every scheme, the user info and the query forms, and URLs with nothing to hide. */
const CASES: Array<[string, string]> = [
  ['redis://u:secret@h:1/0', 'redis://u:***@h:1/0'],
  ['redis://:secret@127.0.0.1:6379/0', 'redis://:***@127.0.0.1:6379/0'],
  ['rediss://u:secret@h/2', 'rediss://u:***@h/2'],
  ['postgres://worq:secret@127.0.0.1:5432/db', 'postgres://worq:***@127.0.0.1:5432/db'],
  ['postgresql://worq:secret@h/db?schema=w', 'postgresql://worq:***@h/db?schema=w'],
  ['redis-cluster://u:secret@h1:7000,h2:7001', 'redis-cluster://u:***@h1:7000,h2:7001'],
  ['redis-sentinel://:secret@s1:26379/m/2', 'redis-sentinel://:***@s1:26379/m/2'],
  // the query parameter form, alone or with the user info, any case, sslpassword too
  ['redis://h:1/0?password=secret', 'redis://h:1/0?password=***'],
  ['rediss://h/0?PASSWORD=secret#x', 'rediss://h/0?PASSWORD=***#x'],
  ['postgres://worq@h/db?password=secret&schema=w', 'postgres://worq@h/db?password=***&schema=w'],
  ['postgresql://h/db?schema=w&password=secret', 'postgresql://h/db?schema=w&password=***'],
  ['postgres://u:secret@h/db?sslpassword=secret', 'postgres://u:***@h/db?sslpassword=***'],
  // passwords written without percent-encoding: hidden whole
  ['redis://u:se@cret@h:1', 'redis://u:***@h:1'],
  ['redis://:se/cret@h:6379/0', 'redis://:***@h:6379/0'],
  ['postgres://u:se#cret@h/db', 'postgres://u:***@h/db'],
  ['redis://u:se%40cret@h', 'redis://u:***@h'],
  // nothing to hide
  ['memory://', 'memory://'],
  ['memory://other', 'memory://other'],
  ['redis://127.0.0.1:6379/0', 'redis://127.0.0.1:6379/0'],
  ['postgres://worq@h:5432/db?schema=w', 'postgres://worq@h:5432/db?schema=w'],
  ['not a url', 'not a url'],
]

describe('redactUrl: passwords in backend URLs', () => {
  for (const [url, shown] of CASES)
    it(`${url} reads ${shown}`, () => {
      expect(redactUrl(url)).to.equal(shown)
      expect(shown).to.not.match(/secret|se%40cret/)
    })

  it("lib/http's copy answers as the library's does", () => {
    for (const [url] of CASES) expect(httpRedactUrl(url), url).to.equal(redactUrl(url))
  })

  it('the errors that quote a URL quote it redacted', () => {
    for (const [url, shown] of CASES) {
      for (const err of [
        new BadUrl(url, 'problem'),
        new BackendUnreachable(url, 'detail'),
        new AuthFailed(url, 'detail', 'fix'),
        new TransactionsUnsupported(url),
      ]) {
        expect(err.message, url).to.include(`"${shown}"`)
        if (shown !== url) expect(err.message, url).to.not.match(/secret/)
      }
    }
  })

  it('getBroker refuses a query password on Redis without quoting it', () => {
    expect(() => getBroker('redis://127.0.0.1:1/0?password=secret', 'q'))
      .to.throw(BadUrl, /redis:\/\/127\.0\.0\.1:1\/0\?password=\*\*\*/)
      .with.property('message')
      .that.does.not.match(/secret/)
  })

  it('hasPassword finds a password where redactUrl hides one', () => {
    for (const url of ['redis://:pw@h', 'redis://u:pw@h:1/0', 'redis://:a/b@c@h/0'])
      expect(hasPassword(url), url).to.equal(true)
    for (const url of ['redis://h:6379/0', 'redis://user@h', 'redis-cluster://h1:1,h2:2'])
      expect(hasPassword(url), url).to.equal(false)
  })
})
