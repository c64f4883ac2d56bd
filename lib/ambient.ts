/**
 * What worq's declarations take from the program that compiles them, so that a client's types
 * hold in every setup. They need @types/node (a dependency of worq, which `index.ts` references)
 * and nothing of the `lib` setting beyond ES2022. Should TypeScript still not load @types/node, a
 * typed queue becomes {@link MissingNodeTypes}: its first use fails to compile, saying why, where
 * it would otherwise be `any` (with `skipLibCheck`, nothing else would report it).
 */

/** True when the program loaded @types/node, which declares the global `process`. */
export type NodeTypesLoaded = typeof globalThis extends {
  /** Node's `process`, which @types/node declares. */
  process: unknown
}
  ? true
  : false

/**
 * A typed queue's type in a program without @types/node: a sentence, so that the first use of
 * the queue fails to compile with it (`Property 'math' does not exist on type "worq's types need
 * @types/node…"`).
 */
export type MissingNodeTypes =
  "worq's types need @types/node (a dependency of worq), which this program did not load"

/**
 * `Symbol.asyncDispose` where the program declares it (lib `esnext.disposable`, or
 * @types/node 20), else `never`: naming the global `AsyncDisposable` instead would make a queue
 * `any` wherever that is missing.
 */
type AsyncDisposeKey = SymbolConstructor extends { readonly asyncDispose: infer K extends symbol }
  ? K
  : never

/** A queue closes its broker when disposed: `await using q = getQueue(url)`. */
export type Closable = { readonly [K in AsyncDisposeKey]: () => Promise<void> }
