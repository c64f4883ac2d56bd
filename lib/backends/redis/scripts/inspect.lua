--[[ inspect.lua: counts of a queue and its live workers.
  KEYS: none declared (built from ARGV[1..2] by key() in common.lua).
  ARGV[1]  key namespace ('worq')
  ARGV[2]  queue
  Returns: { waiting, delayed, pending, processing, oldest ready time (epoch ms, -1 = none), now,
             workers (flat id/JSON list of registrations whose time has not lapsed) }
  The oldest ready time is the later of the task's enqueue time and its runAt (a dependent counts
  from its enqueue). Lapsed worker registrations are removed.
]]
local wait = key(QUEUE, 'wait')
local oldest = -1
local last = redis.call('LINDEX', wait, -1)
if last then
  local rec = redis.call('GET', record(QUEUE, last))
  if rec and is_live(rec) then
    local _, _, h = parse(rec)
    oldest = math.max(h.e or 0, h.u or 0)
  end
end
local wkey = key(QUEUE, 'workers')
local workers, dead = {}, {}
local all = redis.call('HGETALL', wkey)
for i = 1, #all, 2 do
  local until_ms = tonumber(string.match(all[i + 1], '^(%d+)|'))
  if until_ms and until_ms > now() then
    workers[#workers + 1] = all[i]
    workers[#workers + 1] = string.sub(all[i + 1], #tostring(until_ms) + 2)
  else
    dead[#dead + 1] = all[i]
  end
end
if #dead > 0 then redis.call('HDEL', wkey, unpack(dead)) end
return { redis.call('LLEN', wait), redis.call('ZCARD', key(QUEUE, 'delayed')),
  redis.call('SCARD', key(QUEUE, 'pending')), redis.call('HLEN', key(QUEUE, 'tokens')), oldest,
  now(), workers }
