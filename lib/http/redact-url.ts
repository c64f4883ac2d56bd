/**
 * A copy of lib/redact-url.ts: lib/http may import only worq's public entry points, and the
 * library's URL redaction is not one of them (publishing it for this would add to worq's API).
 * test/unit/redact-url.test.ts holds the two to the same answers; change both together.
 */

/** The user info: from `//` to the last `@` (see lib/redact-url.ts). */
const USER_INFO = /\/\/(.*)@/

/** A `password=` query parameter (`sslpassword=` too), up to the next parameter or fragment. */
const PASSWORD_PARAM = /([?&][^=&#]*password=)[^&#]*/gi

/** `url` with its password replaced by `***`, as lib/redact-url.ts does it. */
export function redactUrl(url: string): string {
  return url
    .replace(USER_INFO, (_match, info: string) => {
      const colon = info.indexOf(':')
      return colon < 0 ? `//${info}@` : `//${info.slice(0, colon)}:***@`
    })
    .replace(PASSWORD_PARAM, '$1***')
}
