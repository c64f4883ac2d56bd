// Builds the dashboard page (dashboard/) into dist/http/dashboard/: app.js bundled and minified by
// esbuild (Preact included: nothing is loaded from another host), and the static files copied.
// `npm run build` runs it; `npm run build:dashboard` runs it alone.
import { build } from 'esbuild'
import { copyFileSync, mkdirSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('..', import.meta.url))
const out = `${root}dist/http/dashboard/`
mkdirSync(out, { recursive: true })
await build({
  entryPoints: [`${root}dashboard/src/main.tsx`],
  bundle: true,
  minify: true,
  format: 'iife',
  target: ['es2022'],
  jsx: 'automatic',
  jsxImportSource: 'preact',
  outfile: `${out}app.js`,
  legalComments: 'none',
  logLevel: 'warning',
})
for (const file of ['index.html', 'app.css', 'favicon.svg'])
  copyFileSync(`${root}dashboard/${file}`, out + file)
