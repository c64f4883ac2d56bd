/**
 * Lines: task ids waiting in priority order — lower priority first, first in first out within one
 * priority — with a way back to the front (a release keeps a task's place).
 */
export class Lines {
  /** Ids by priority; a Set keeps insertion order. */
  readonly #byPriority = new Map<number, Set<string>>()
  /** The priorities that have ids, ascending. */
  #order: number[] = []
  #size = 0

  get size(): number {
    return this.#size
  }

  #line(priority: number): Set<string> {
    let line = this.#byPriority.get(priority)
    if (!line) {
      line = new Set()
      this.#byPriority.set(priority, line)
      let i = 0
      while (i < this.#order.length && this.#order[i]! < priority) i++
      this.#order.splice(i, 0, priority)
    }
    return line
  }

  /** Adds `id` at the back of its priority. */
  push(id: string, priority: number): void {
    const line = this.#line(priority)
    if (!line.has(id)) this.#size++
    line.add(id)
  }

  /** Adds `id` at the front of its priority. */
  unshift(id: string, priority: number): void {
    const line = this.#line(priority)
    if (line.has(id)) line.delete(id)
    else this.#size++
    this.#byPriority.set(priority, new Set([id, ...line]))
  }

  /** Removes `id`; true when it was there. */
  delete(id: string, priority: number): boolean {
    const line = this.#byPriority.get(priority)
    if (!line?.delete(id)) return false
    this.#size--
    if (line.size === 0) this.#drop(priority)
    return true
  }

  #drop(priority: number): void {
    this.#byPriority.delete(priority)
    this.#order = this.#order.filter(p => p !== priority)
  }

  /** Takes the first id (lowest priority, oldest), or undefined. */
  shift(): string | undefined {
    const priority = this.#order[0]
    if (priority === undefined) return undefined
    const line = this.#byPriority.get(priority)!
    const id = line.values().next().value as string
    line.delete(id)
    this.#size--
    if (line.size === 0) this.#drop(priority)
    return id
  }

  /** The first id without taking it. */
  peek(): string | undefined {
    const priority = this.#order[0]
    return priority === undefined
      ? undefined
      : (this.#byPriority.get(priority)!.values().next().value as string)
  }

  /** Every id, in line order. */
  *[Symbol.iterator](): IterableIterator<string> {
    for (const p of [...this.#order]) yield* [...this.#byPriority.get(p)!]
  }

  /** Removes every id. */
  clear(): void {
    this.#byPriority.clear()
    this.#order = []
    this.#size = 0
  }
}
