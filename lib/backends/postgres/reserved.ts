/**
 * A reserved task as the exchange sends it since schema version 8: a JSON array of its fields in
 * the order of {@link ReservedRow}, about half the text of an object that names each field, for
 * the server to build and for this process to parse. The exchange asks for arrays by setting
 * `worq_reply.rows` for its statement ({@link exchangeSql}); without it (a process of an earlier
 * version, which reads objects) the function answers objects as before.
 */
import type { ReservedTask } from '../backend.js'

/** The fields of a reserved task, in the order `<schema>.reserved()` writes them. */
type ReservedRow = [
  id: string,
  name: string,
  payload: string,
  deps: ReservedTask['deps'],
  onError: ReservedTask['onError'],
  ignoreResult: boolean,
  resultTimeout: number,
  heartrate: number,
  attempts: number,
  backoff: ReservedTask['backoff'],
  runAt: number,
  timeout: number,
  priority: number,
  metadata: string,
  cache: NonNullable<ReservedTask['cache']> | null,
  trace: string,
  token: string,
  attempt: number,
  slots: string[] | null,
  dueAt: number,
]

/**
 * The exchange's statement: asks `<schema>.reserved()` for arrays, then exchanges and parks the
 * worker or ends its park (schema version 11: $5 park ms, 0 for none, $6 slots, $7 the process's
 * channel, $8 its listening connection's server process). Schema version 22: $9 the call's id
 * (`worq_call.id`, in the tokens of the tasks it reserves) and $10 `on` when the statement is sent
 * again after its connection dropped (`worq_call.again`: the exchange then answers as its first
 * try did if that try committed).
 */
export function exchangeSql(schema: string): string {
  const ask =
    `SELECT set_config('worq_reply.rows', 'on', true), set_config('worq_call.id', $9, true), ` +
    `set_config('worq_call.again', $10, true)`
  return `SELECT ${schema}.exchange($1, $2, $3::jsonb, $4, $5, $6, $7, $8) AS v FROM (${ask}) AS asked`
}

/** One reserved task from the exchange's reply (a {@link ReservedRow}). */
export function decodeReserved(row: unknown): ReservedTask {
  const r = row as ReservedRow
  return {
    id: r[0],
    name: r[1],
    payload: r[2],
    deps: r[3],
    onError: r[4],
    ignoreResult: r[5],
    resultTimeout: r[6],
    heartrate: r[7],
    attempts: r[8],
    backoff: r[9],
    runAt: r[10],
    timeout: r[11],
    priority: r[12],
    metadata: r[13],
    cache: r[14] ?? undefined,
    trace: r[15],
    token: r[16],
    attempt: r[17],
    slots: r[18] ?? [],
    dueAt: r[19],
  }
}
