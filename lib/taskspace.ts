/**
 * TaskSpace: a named group of functions that a broker can expose. Dotted names make namespaces:
 * `new TaskSpace('a.b', { fn })` is called as `q.a.b.fn(...)`.
 */
import type { TaskFunction } from './types.js'

const NAME = /^[A-Za-z_$][\w$-]*(\.[A-Za-z_$][\w$-]*)*$/

/** The longest dotted name, in characters. */
const MAX_NAME = 4096

/**
 * Name segments a queue's Proxy does not treat as names: `then` (so that a queue is not taken for
 * a promise) and `toJSON` (so that `JSON.stringify` does not call a task). A task or namespace of
 * that name could never be called, so none may be made.
 */
const RESERVED = /(^|\.)(then|toJSON)(\.|$)/

/** Checks a dotted name (a space name, a task name, a target, a queue). */
export function checkName(name: unknown, what: string, allowEmpty = false): string {
  if (
    typeof name !== 'string' ||
    (name === '' ? !allowEmpty : !NAME.test(name) || name.length > MAX_NAME)
  )
    throw new TypeError(
      `Expected \`${what}\` to be a dotted name like "math" or "a.b.c" (letters, digits, _ $ -; at most ${MAX_NAME} characters), got ${JSON.stringify(name)}`,
    )
  if (RESERVED.test(name))
    throw new TypeError(
      `Expected \`${what}\` to have no part named "then" or "toJSON" (a queue's Proxy cannot call those: a queue would be taken for a promise, or a JSON.stringify would call a task), got ${JSON.stringify(name)}`,
    )
  return name
}

/** A namespace of functions, typed so that a client queue knows their arguments and results. */
export class TaskSpace<
  Name extends string = string,
  Fns extends Record<string, TaskFunction> = Record<never, never>,
> {
  /** The space's dotted name ('' for the root). */
  readonly name: Name
  readonly #tasks = new Map<string, TaskFunction>()

  /**
   * @param name - dotted namespace, e.g. `'math'` or `'reports.daily'`; `''` for top-level tasks.
   * @param fnMap - functions to register, by name.
   */
  constructor(name: Name, fnMap?: Fns) {
    this.name = checkName(name, 'name', true) as Name
    if (fnMap !== undefined) {
      if (typeof fnMap !== 'object' || fnMap === null)
        throw new TypeError(
          'Expected `fnMap` to be an object of functions, like { add: (a, b) => a + b }',
        )
      for (const key of Object.keys(fnMap)) this.task(fnMap[key] as TaskFunction, key)
    }
  }

  /**
   * Registers one function. Its name is `name`, or the function's own name when omitted (an
   * anonymous function needs a name). Returns the space, typed with the new task when `name` is
   * given, so calls can be chained.
   */
  task<F extends TaskFunction, N extends string>(
    fn: F,
    name: N,
  ): TaskSpace<Name, Fns & Record<N, F>>
  task<F extends TaskFunction>(fn: F): this
  task(fn: TaskFunction, name?: string): TaskSpace<Name, any> {
    if (typeof fn !== 'function')
      throw new TypeError(`Expected a function to register, got ${typeof fn}`)
    const own = name ?? fn.name.replace(/^bound /, '')
    if (!own)
      throw new TypeError(
        'Expected a named function: an arrow or anonymous function has no name; pass one, as in space.task(fn, "name")',
      )
    checkName(own, 'task name')
    const full = this.name ? `${this.name}.${own}` : own
    if (this.#tasks.has(full))
      throw new TypeError(`task "${full}" is already registered in this space`)
    this.#tasks.set(full, fn)
    return this
  }

  /** The registered functions by full dotted name. */
  get tasks(): ReadonlyMap<string, TaskFunction> {
    return this.#tasks
  }
}
