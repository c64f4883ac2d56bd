/**
 * The shape of lib/'s imports: the command sits on top of the library (nothing outside lib/cli
 * imports it), and no module imports itself through others, so each can be read on its own.
 * Type-only imports count too: they are what a reader follows.
 */
import { expect } from 'chai'
import fs from 'node:fs'
import path from 'node:path'
import ts from 'typescript'

const lib = path.resolve(import.meta.dirname, '../../lib')

/** Every module of lib/ with the lib/ modules it imports or re-exports from (relative paths). */
function importGraph(): Map<string, string[]> {
  const graph = new Map<string, string[]>()
  const files = fs.readdirSync(lib, { recursive: true, encoding: 'utf8' })
  for (const file of files.filter(f => f.endsWith('.ts'))) {
    const source = ts.createSourceFile(
      file,
      fs.readFileSync(path.join(lib, file), 'utf8'),
      ts.ScriptTarget.Latest,
    )
    const targets: string[] = []
    for (const statement of source.statements) {
      const specifier =
        ts.isImportDeclaration(statement) || ts.isExportDeclaration(statement)
          ? statement.moduleSpecifier
          : undefined
      if (specifier && ts.isStringLiteral(specifier) && specifier.text.startsWith('.')) {
        const target = path.join(path.dirname(file), specifier.text.replace(/\.js$/, '.ts'))
        targets.push(target)
      }
    }
    graph.set(path.normalize(file), targets)
  }
  return graph
}

/** The import circles of `graph`, each as the path that closes it. */
function circles(graph: Map<string, string[]>): string[][] {
  const found: string[][] = []
  const state = new Map<string, 'open' | 'done'>()
  const stack: string[] = []
  const visit = (file: string) => {
    state.set(file, 'open')
    stack.push(file)
    for (const target of graph.get(file) ?? []) {
      if (state.get(target) === 'open') found.push([...stack.slice(stack.indexOf(target)), target])
      else if (!state.has(target)) visit(target)
    }
    stack.pop()
    state.set(file, 'done')
  }
  for (const file of graph.keys()) if (!state.has(file)) visit(file)
  return found
}

describe('lib/ imports', () => {
  const graph = importGraph()

  it('finds the modules and their imports (the test itself works)', () => {
    expect(graph.get('index.ts')).to.include('broker.ts')
    expect(
      circles(
        new Map([
          ['a.ts', ['b.ts']],
          ['b.ts', ['a.ts']],
        ]),
      ),
    ).to.deep.equal([['a.ts', 'b.ts', 'a.ts']])
  })

  it('the library never imports the command (lib/cli uses the library, not the reverse)', () => {
    const upward = [...graph]
      .filter(([file]) => !file.startsWith(`cli${path.sep}`))
      .flatMap(([file, targets]) =>
        targets.filter(t => t.startsWith(`cli${path.sep}`)).map(t => `${file} -> ${t}`),
      )
    expect(upward).to.deep.equal([])
  })

  it('the HTTP surface (lib/http) uses only the public entry points, and the library never imports it', () => {
    const http = `http${path.sep}`
    const reaching = [...graph]
      .filter(([file]) => file.startsWith(http))
      .flatMap(([file, targets]) =>
        targets
          .filter(
            t => !t.startsWith(http) && t !== 'index.ts' && t !== path.join('metrics', 'index.ts'),
          )
          .map(t => `${file} -> ${t}`),
      )
    expect(reaching).to.deep.equal([])
    expect([...graph.keys()].filter(f => f.startsWith(http)).length).to.be.greaterThan(5)
    const upward = [...graph]
      .filter(([file]) => !file.startsWith(http) && !file.startsWith(`cli${path.sep}`))
      .flatMap(([file, targets]) =>
        targets.filter(t => t.startsWith(http)).map(t => `${file} -> ${t}`),
      )
    expect(upward).to.deep.equal([])
  })

  it('has no import circle', () => {
    expect(circles(graph).map(c => c.join(' -> '))).to.deep.equal([])
  })
})
