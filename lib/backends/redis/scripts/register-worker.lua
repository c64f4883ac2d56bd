--[[ register-worker.lua: records (or refreshes, or with ttl 0 removes) a live worker.
  KEYS: none declared (built from ARGV[1..2] by key() in common.lua).
  ARGV[1]  key namespace ('worq')
  ARGV[2]  queue
  ARGV[3]  worker id
  ARGV[4]  ttl ms (0 = unregister)
  ARGV[5]  the worker's info, JSON (ignored when unregistering)
  Returns: 1. The `workers` hash holds "<until epoch ms>|<JSON>" per worker and expires with its
  longest-lived registration.
]]
local wkey = key(QUEUE, 'workers')
local ttl = tonumber(ARGV[4])
if ttl == 0 then
  redis.call('HDEL', wkey, ARGV[3])
  return 1
end
redis.call('HSET', wkey, ARGV[3], (now() + ttl) .. '|' .. ARGV[5])
if redis.call('PTTL', wkey) < ttl then redis.call('PEXPIRE', wkey, ttl) end
return 1
