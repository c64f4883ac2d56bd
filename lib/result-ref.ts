/**
 * Result references: what the codec (serializer.ts) needs of a Deferred passed as an argument, its
 * task's queue and id, and the outcome when it already holds one. deferred.ts marks Deferred's
 * instances here, so the codec recognises them without importing deferred.ts, which reads
 * outcomes through the codec (deferred.ts → outcome.ts → serializer.ts).
 */

const kResultRef = Symbol('worq.resultRef')

/** A Deferred, as the codec sees it. */
export interface ResultRef {
  /** The queue of the task whose result this stands for. */
  readonly queue: string
  /** That task's id. */
  readonly id: string
  /** Its outcome string, when already held. */
  readonly outcome: string | undefined
}

/** Marks every instance of `cls` as a ResultRef. */
export function markResultRefs(cls: abstract new (...args: any[]) => ResultRef): void {
  Object.defineProperty(cls.prototype, kResultRef, { value: true })
}

/** True when `v` is an instance of a class marked by {@link markResultRefs}. */
export function isResultRef(v: unknown): v is ResultRef {
  return typeof v === 'object' && v !== null && (v as { [kResultRef]?: true })[kResultRef] === true
}
