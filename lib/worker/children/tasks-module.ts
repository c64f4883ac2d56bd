/**
 * The tasks module: the file a worker (or each of its child processes) loads to know what it runs.
 *
 * Every exported TaskSpace is exposed: named exports, the default export, and — for a CommonJS
 * module — the TaskSpaces on `module.exports`. Exported plain functions are **not** exposed: a
 * module exports helpers too, and exposing one by accident would make it a remote entry point. Put
 * a function in a TaskSpace (`new TaskSpace('', { fn })` for a top-level name) to expose it.
 *
 * A TaskSpace is recognised by class, or by shape when it comes from another copy of worq (a
 * global `worq` CLI loading a project that has its own `worq` installed).
 */
import { resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import { WorqError } from '../../errors.js'
import { TaskSpace } from '../../taskspace.js'
import type { TaskFunction } from '../../types.js'

/** The tasks module could not be loaded, or exposes nothing. Code `ERR_WORQ_TASKS_MODULE`. */
export class TasksModuleError extends WorqError {
  constructor(message: string, options?: ErrorOptions) {
    super('ERR_WORQ_TASKS_MODULE', message, options)
  }
}

/** The functions a tasks module exposes, by full dotted name. */
export type TaskMap = ReadonlyMap<string, TaskFunction>

/** The `file:` URL of a tasks module given as a path (relative to `cwd`) or as a URL. */
export function tasksModuleUrl(spec: string | URL, cwd = process.cwd()): string {
  if (spec instanceof URL) return spec.href
  if (typeof spec !== 'string' || spec === '')
    throw new TypeError('Expected `tasks` to be the path or file: URL of a module of TaskSpaces')
  if (spec.startsWith('file:')) return spec
  return pathToFileURL(resolve(cwd, spec)).href
}

/** Loads a tasks module (ESM or CommonJS) and collects every task of its exported TaskSpaces. */
export async function loadTasks(spec: string | URL): Promise<TaskMap> {
  const url = tasksModuleUrl(spec)
  let mod: Record<string, unknown>
  try {
    mod = (await import(url)) as Record<string, unknown>
  } catch (err) {
    throw new TasksModuleError(
      `cannot load the tasks module ${url}: ${(err as Error)?.message ?? String(err)}`,
      { cause: err },
    )
  }
  return collectTasks(mod, url)
}

/** Every task of the TaskSpaces among a module namespace's exports. */
export function collectTasks(mod: Record<string, unknown>, what = 'the tasks module'): TaskMap {
  const spaces = new Set<TaskSpace<string, any>>()
  const consider = (v: unknown) => {
    if (isTaskSpace(v)) spaces.add(v)
  }
  for (const v of Object.values(mod)) consider(v)
  const def = mod.default
  if (def && typeof def === 'object' && !isTaskSpace(def)) {
    for (const v of Object.values(def)) consider(v)
  }
  if (spaces.size === 0)
    throw new TasksModuleError(
      `${what} exports no TaskSpace; export one, e.g. \`export const math = new TaskSpace('math', { add })\``,
    )
  const tasks = new Map<string, TaskFunction>()
  for (const space of spaces) {
    for (const [name, fn] of space.tasks) {
      if (tasks.has(name) && tasks.get(name) !== fn)
        throw new TasksModuleError(
          `${what} exports two TaskSpaces that both define "${name}"; rename one of them`,
        )
      tasks.set(name, fn)
    }
  }
  return tasks
}

/** A root TaskSpace holding every task of `tasks` under its full name (for `broker.expose`). */
export function asTaskSpace(tasks: TaskMap): TaskSpace<'', any> {
  const space = new TaskSpace('')
  for (const [name, fn] of tasks) space.task(fn, name)
  return space
}

function isTaskSpace(v: unknown): v is TaskSpace<string, any> {
  if (v instanceof TaskSpace) return true
  if (typeof v !== 'object' || v === null) return false
  const s = v as { constructor?: { name?: unknown }; tasks?: unknown; name?: unknown }
  return s.constructor?.name === 'TaskSpace' && s.tasks instanceof Map && typeof s.name === 'string'
}
