// What the Lua primitives the scripts are made of cost on this Redis: each function of a throwaway
// library loops 1 000 times over one primitive; INFO commandstats gives the server time, and the
// empty loop's time is subtracted. The library is deleted afterwards.
// REDIS_URL=redis://127.0.0.1:6379/0 node bench/lua-cost.js [calls per primitive=200]
// (a Redis 7+ you may load a function library into)
import { Redis } from 'ioredis'
import { commandStats } from './redis.js'

const calls = Number(process.argv[2] ?? 200)
const redis = new Redis(process.env.REDIS_URL)
const LIB = 'worq_lua_cost'

/** [name, Lua body run 1 000 times with `a` = the call's arguments and `i` = the iteration] */
const PRIMITIVES = [
  ['empty loop', ''],
  ['concatenate 2 strings', 'local s = a[1] .. a[2]'],
  ['concatenate 6 parts with a number', "local s = i .. '|0|' .. a[1] .. '|' .. a[2]"],
  ['tonumber of a string', "local n = tonumber('30000')"],
  ['string.match, one capture', "local m = string.match('30000|3600000|abc|g', '^(%d+)')"],
  ['table of 5 entries', 'local t = { i, i, i, i, i }'],
  ['closure', 'local f = function() return i end'],
  ['cjson.encode of a handover', 'local s = cjson.encode({ a[1], a[2], 1, a[3], {} })'],
  ['redis.call TIME', "redis.call('TIME')"],
]

const body = PRIMITIVES.map(
  ([, lua], k) =>
    `redis.register_function('${LIB}_${k}', function(_, a) for i = 1, 1000 do ${lua} end return 1 end)`,
).join('\n')
await redis.function('LOAD', 'REPLACE', `#!lua name=${LIB}\n${body}`)
const record = 'E0:{"n":"add","r":3600000,"h":30000,"a":1}\n{"json":[1,2]}'

const perCall = []
for (let k = 0; k < PRIMITIVES.length; k++) {
  await redis.config('RESETSTAT')
  const p = redis.pipeline()
  for (let c = 0; c < calls; c++) p.fcall(`${LIB}_${k}`, 0, 'abcdefgh', 'queue', record)
  await p.exec()
  const fcall = commandStats(await redis.info('commandstats')).get('fcall')
  perCall.push(fcall.usec / fcall.calls)
}
await redis.function('DELETE', LIB)
await redis.quit()

console.log(
  `µs per primitive (server time of 1 000 in a loop, less the empty loop; ${calls} calls each):`,
)
PRIMITIVES.forEach(([name], k) => {
  if (k === 0) console.log(`  ${name.padEnd(36)} ${(perCall[0] / 1000).toFixed(3)} per turn`)
  else console.log(`  ${name.padEnd(36)} ${((perCall[k] - perCall[0]) / 1000).toFixed(3)}`)
})
