/**
 * The consumer matrix as data: which TypeScript versions and project settings compile the
 * fixtures, what each cell must do, and which programs run. `run.mjs` carries it out.
 *
 * A cell is one `tsc -p` of one tsconfig in a consumer project that installed the packed tarball.
 * It expects either a clean compile (every `@ts-expect-error` used) or a failure whose errors are
 * all of the listed codes and one of which says the listed text.
 */

/**
 * TypeScript versions, each installed once into the cache: the oldest supported (the oldest that
 * the current @types/node supports, which worq's declarations load), the newest with a JavaScript
 * API, and the newest (the native compiler). README, "Installing", names the same range.
 */
export const TYPESCRIPTS = ['5.6.3', '6.0.3', '7.0.2']

/** How a project resolves `worq`. */
export const MODULES = {
  node16: { module: 'node16', moduleResolution: 'node16' },
  nodenext: { module: 'nodenext', moduleResolution: 'nodenext' },
  bundler: { module: 'esnext', moduleResolution: 'bundler' },
}

/** Project settings that decide which ambient names a declaration file can rely on. */
const LIBS = [['ES2022'], ['ESNext']]
const TYPES = [[], ['node']]
const SKIP_LIB_CHECK = [false, true]

/** Options every consumer project has: a strict project, as `tsc --init` writes it. */
const BASE = { strict: true, target: 'ES2022', noEmit: true }

/** True when TypeScript `version` is `major.minor` or newer. */
function atLeast(version, major, minor) {
  const [a, b] = version.split('.').map(Number)
  return a > major || (a === major && b >= minor)
}

/**
 * The cells. `entries` is the file that imports every entry point of the exports map (written by
 * run.mjs), so a subpath added to `exports` is checked in every cell without a change here.
 */
export function cells(entries) {
  const out = []
  for (const ts of TYPESCRIPTS) {
    for (const [mod, resolution] of Object.entries(MODULES)) {
      let first = true
      for (const lib of LIBS)
        for (const types of TYPES)
          for (const skipLibCheck of SKIP_LIB_CHECK) {
            const name = `${lib[0]} types=[${types}] skipLibCheck=${skipLibCheck}`
            out.push({
              id: `ts${ts} ${mod} ${name}`,
              ts,
              project: 'full',
              options: { ...BASE, ...resolution, lib, types, skipLibCheck },
              files: ['typed-client.ts', entries],
              // TypeScript's output of the client runs once per version and module setting.
              run: first ? 'typed-client.js' : undefined,
            })
            first = false
          }
    }
    // CommonJS TypeScript: `require` of an ES module is modelled by nodenext from 5.8 on.
    for (const mod of ['node16', 'nodenext']) {
      const typed = mod === 'nodenext' && atLeast(ts, 5, 8)
      out.push({
        id: `ts${ts} ${mod} CommonJS .cts`,
        ts,
        project: 'full',
        options: { ...BASE, ...MODULES[mod], lib: ['ES2022'], types: [], skipLibCheck: true },
        files: ['cjs-client.cts'],
        expect: typed ? undefined : { codes: ['TS1479'], says: 'is an ECMAScript module' },
      })
    }
    // No @types/node to be found: a compile error that names it, never a silent `any`.
    for (const skipLibCheck of SKIP_LIB_CHECK)
      out.push({
        id: `ts${ts} nodenext without @types/node skipLibCheck=${skipLibCheck}`,
        ts,
        project: 'bare',
        options: { ...BASE, ...MODULES.nodenext, lib: ['ES2022'], types: [], skipLibCheck },
        files: ['bare-client.ts'],
        expect: { codes: ['TS2339', 'TS2551', 'TS2688', 'TS2304', 'TS2503'], says: '@types/node' },
      })
  }
  return out
}

/** JavaScript clients, run on the oldest Node that `engines` allows and on this machine's. */
export const PROGRAMS = ['esm-client.mjs', 'cjs-client.cjs']
