--[[ cache.lua: the queue's result cache (docs/cache.md; keys in shaping.lua).
  KEYS[1]  a key of the queue (its slot)
  ARGV[1]  key namespace ('worq')
  ARGV[2]  queue
  ARGV[3]  'delete' (ARGV[4] = the cache key), 'clear' or 'size'
  Returns: 'delete' 1 when an entry was removed; 'clear' how many were; 'size' how many live
  entries there are.
]]
local action = ARGV[3]
cache_expire(QUEUE)
local cache, lru, exp = key(QUEUE, 'cache'), key(QUEUE, 'clru'), key(QUEUE, 'cexp')
if action == 'delete' then
  local n = rcall('HDEL', cache, ARGV[4])
  rcall('ZREM', lru, ARGV[4])
  rcall('ZREM', exp, ARGV[4])
  return n
elseif action == 'clear' then
  local n = rcall('HLEN', cache)
  rcall('DEL', cache, lru, exp)
  return n
end
-- Past entries beyond what one expiry step takes: count only the live ones.
return rcall('HLEN', cache) - rcall('ZCOUNT', exp, '-inf', now())
