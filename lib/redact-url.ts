/**
 * Backend URLs as worq shows them (error messages, `backend.url`, the CLI's lines, metrics
 * clashes), without their passwords. lib/http keeps a copy of this function (http/redact-url.ts):
 * it may import only the public entry points; test/unit/redact-url.test.ts holds the two to the
 * same answers.
 */

/**
 * The user info: from `//` to the last `@`. Taken that far, it hides a password written with an
 * unencoded `@`, `/`, `?` or `#` too (a generated password often holds a `/`); the cost, a host
 * and path hidden with it when the query holds an `@`, is the safe side.
 */
const USER_INFO = /\/\/(.*)@/

/** A `password=` query parameter (`sslpassword=` too), up to the next parameter or fragment. */
const PASSWORD_PARAM = /([?&][^=&#]*password=)[^&#]*/gi

/**
 * Whether `url`'s user info holds a password (`user:password@`, `:password@`), found as redactUrl
 * finds it (a password holding `/` or `@` included).
 */
export function hasPassword(url: string): boolean {
  return USER_INFO.exec(url)?.[1]?.includes(':') ?? false
}

/**
 * `url` with its password replaced by `***`: the password of the user info (`user:***@`, the
 * user name kept; `user@` without one is left as it is) and the value of each `password` query
 * parameter. Works on any string, parsable or not, so a bad URL can be quoted in its error.
 */
export function redactUrl(url: string): string {
  return url
    .replace(USER_INFO, (_match, info: string) => {
      const colon = info.indexOf(':')
      return colon < 0 ? `//${info}@` : `//${info.slice(0, colon)}:***@`
    })
    .replace(PASSWORD_PARAM, '$1***')
}
