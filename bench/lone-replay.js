// What a lone call's scripts cost Redis beyond their commands: worq makes `n` lone calls through
// bench/runner.js (after its 2 000 of warm-up, which count too), then a throwaway function library
// replays the same commands in the same order, straight-line, with nothing computed between them:
// the enqueue's 13 (record, settings, the parked worker, the lines, token, lease, handover,
// listing, events) and the exchange's 20 (settings, tokens, dependents, outcome, lease, the lines,
// park, handover list, events, metrics), as a lone call on an idle queue with a parked worker ran
// them on 2026-12-07 (MONITOR). INFO commandstats gives both: each FCALL's time and its commands'
// time.
// The replay's library is deleted afterwards.
//
//   REDIS_URL=redis://127.0.0.1:6390/0 node bench/lone-replay.js [n=2000]
//
// (a Redis 7+ you may flush: the queue's keys and statistics are reset before each part)
import { execFileSync } from 'node:child_process'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Redis } from 'ioredis'
import { commandStats } from './redis.js'

const here = dirname(fileURLToPath(import.meta.url))
const n = Number(process.argv[2] ?? 2000)
const redis = new Redis(process.env.REDIS_URL)
const Q = 'worq:{bench}:'

// (redis.call is read inside each function: a library may not read it while it loads.)
const LIB = `#!lua name=worq_lone_replay
redis.register_function('worq_lone_replay_enqueue', function(_, a)
  local call = redis.call
  local id, rec, token, handover, second, events = a[1], a[2], a[3], a[4], a[5], a[6]
  call('SET', '${Q}t:' .. id, rec, 'NX')
  call('HGETALL', '${Q}conf')
  call('HGETALL', '${Q}parked')
  call('EXISTS', '${Q}wait', '${Q}prio')
  call('TIME')
  call('HSET', '${Q}tokens', id, token)
  call('ZADD', '${Q}leases', '+inf', 'pin', '1796602030677', id)
  call('HDEL', '${Q}parked', 'w1')
  call('RPUSH', '${Q}h:w1', handover)
  call('PEXPIRE', '${Q}h:w1', '81000')
  call('RPUSH', second, id)
  call('INCRBY', '${Q}evn', '2')
  call('XADD', '${Q}ev', '*', 'f', events)
  return { 1, 0 }
end)
redis.register_function('worq_lone_replay_exchange', function(_, a)
  local call = redis.call
  local id, outcome, events, minute = a[1], a[2], a[3], a[4]
  call('HGETALL', '${Q}conf')
  call('GET', '${Q}l:w1')
  call('HMGET', '${Q}tokens', id, 'p:' .. id)
  call('HMGET', '${Q}dependents', id)
  call('TIME')
  call('SET', '${Q}t:' .. id, outcome, 'PX', '3600000')
  call('HDEL', '${Q}tokens', id, 'p:' .. id)
  call('ZREM', '${Q}leases', id)
  call('ZRANGE', '${Q}delayed', '0', '0', 'WITHSCORES')
  call('EXISTS', '${Q}prio')
  call('RPOP', '${Q}wait', '17')
  call('HSET', '${Q}parked', 'w1', 't1|1796602010676|w1:Xw2xmMD4p')
  call('PEXPIRE', '${Q}parked', '2000')
  call('LPOP', '${Q}h:w1', '100')
  call('INCRBY', '${Q}evn', '1')
  call('XADD', '${Q}ev', '*', 'f', events)
  call('HINCRBY', minute, 'c', '1')
  call('HINCRBY', minute, 'w0', '1')
  call('HINCRBY', minute, 'ws', '1')
  call('HINCRBY', minute, 't0', '1')
  return { 'c{"json":2}', 0 }
end)`

/**
 * FCALLs and their µs, and the µs of every other command but the connections' own, since
 * RESETSTAT.
 */
async function stats() {
  let commandUs = 0
  const all = commandStats(await redis.info('commandstats'))
  for (const [name, s] of all)
    if (
      !/^(fcall|info|config|flushall|function|blpop|ping|quit|client|select|subscribe)/.test(name)
    )
      commandUs += s.usec
  const fcall = all.get('fcall') ?? { calls: 0, usec: 0 }
  return { fcalls: fcall.calls, fcallUs: fcall.usec, commandUs }
}

const show = (what, s, calls) =>
  console.log(
    `${what.padEnd(34)} ${(s.fcallUs / calls).toFixed(1).padStart(7)} µs of FCALL a lone call` +
      `, ${(s.commandUs / calls).toFixed(1).padStart(6)} µs of it in commands (${s.fcalls} FCALLs)`,
  )

// worq: n lone calls after runner.js's 2 000 of warm-up.
await redis.flushall()
await redis.config('RESETSTAT')
execFileSync(
  process.execPath,
  [join(here, 'runner.js'), 'worq', 'latency-steady', String(n), '1'],
  {
    stdio: ['ignore', 'ignore', 'inherit'],
  },
)
const worq = await stats()
show('worq (its scripts)', worq, n + 2000)

await redis.flushall()
await redis.function('LOAD', 'REPLACE', LIB)
await redis.config('RESETSTAT')
const rec =
  'E0:{"n":"add","r":3600000,"h":10000,"a":1,"b":["fixed",0,0,0],"u":0,"e":1796602009675,' +
  '"g":"J6dz7F8e","c":"ObtndaQ7huT8"}\n{"json":[1,1]}'
const head = 'add|1796602009675|1|0|1796602009675|w1|1|0'
const token = `w1:jqExz75Bp.1||10000|3600000|ObtndaQ7huT8|J6dz7F8e\n${head}`
for (let i = 0; i < n; i++) {
  const id = `LUPNimpeAQiSL1SS${String(i).padStart(6, '0')}`
  const now = Date.now()
  await redis.fcall(
    'worq_lone_replay_enqueue',
    1,
    `${Q}conf`,
    id,
    rec,
    token,
    `\x1e\x1f${id}\x1fw1:jqExz75Bp.1\x1f1\x1f${rec}\x1f`,
    `${Q}ls:${Math.floor(now / 1000)}`,
    `${now}\x1eenqueued\x1f${id}\x1fadd\x1f\x1fstarted\x1f${id}\x1f${token}\x1f`,
  )
  await redis.fcall(
    'worq_lone_replay_exchange',
    1,
    `${Q}conf`,
    id,
    `c{"json":2}\njqExz75Bp.1\nJ6dz7F8e\n${head}||${now + 1}`,
    `${now + 1}\x1ecompleted\x1f${id}\x1f${head}\x1f`,
    `${Q}m:${now - (now % 60000)}`,
  )
}
const replay = await stats()
show('the same commands, straight-line', replay, n)
await redis.function('DELETE', 'worq_lone_replay')
await redis.flushall()
await redis.quit()
