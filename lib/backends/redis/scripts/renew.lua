--[[ renew.lua: extends a worker's leases in one call.
  KEYS[1]  a key of the queue (its slot)
  ARGV[1]  key namespace ('worq')
  ARGV[2]  queue
  ARGV[3]  number of leases n, then 3 slots per lease: id, token, heartrate (ms)
  Returns: the ids whose lease was lost (token mismatch, or no longer processing); those are not
  extended. Each kept lease becomes now + 2 × heartrate + 1000 ms.
]]
local n = tonumber(ARGV[3])
local tokens, leases = key(QUEUE, 'tokens'), key(QUEUE, 'leases')
local ids = {}
for i = 1, n do ids[i] = ARGV[1 + i * 3] end
local held = rcall_read('HMGET', tokens, ids)
local lost, zadd = {}, {}
for i = 1, n do
  local base = 1 + i * 3
  local token = held[i] and held_token(held[i])
  if token == ARGV[base + 1] then
    zadd[#zadd + 1] = now() + lease_ms(tonumber(ARGV[base + 2]))
    zadd[#zadd + 1] = ids[i]
  else
    lost[#lost + 1] = ids[i]
  end
end
if #zadd > 0 then rcall_list('ZADD', leases, zadd, 'XX') end
return lost
