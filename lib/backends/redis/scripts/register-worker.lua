--[[ register-worker.lua: records (or refreshes, or with ttl 0 removes) a live worker.
  KEYS[1]  a key of the queue (its slot)
  ARGV[1]  key namespace ('worq')
  ARGV[2]  queue
  ARGV[3]  worker id
  ARGV[4]  ttl ms (0 = unregister)
  ARGV[5]  the worker's info, JSON (ignored when unregistering)
  Unregistering also drops the worker's park and releases what was handed over to it and never
  popped (back first in line, the attempt uncounted), and drops the sweep record (`swept`, see
  sweep.lua) of a queue left without work, and its leases set when no lease is left in it.
  Returns: 1. The `workers` hash holds "<until epoch ms>|<JSON>" per worker and expires with its
  longest-lived registration.
]]
local wkey = key(QUEUE, 'workers')
local ttl = tonumber(ARGV[4])
if ttl == 0 then
  rcall('HDEL', wkey, ARGV[3])
  rcall('HDEL', key(QUEUE, 'parked'), ARGV[3])
  local tokens, handed = key(QUEUE, 'tokens'), unpopped(QUEUE, ARGV[3])
  for i = 1, #handed - 1, 2 do
    local id, token = handed[i], handed[i + 1]
    local v = rcall('HGET', tokens, id)
    local h = v and read_held(v)
    if h and h.token == token then
      rcall('HDEL', tokens, id, 'p:' .. id)
      drop_leases(QUEUE, { id })
      if h.holds then free_slots(QUEUE, id, h.name) end
      released(QUEUE, id, h)
    end
  end
  rcall('DEL', key(QUEUE, 'l:' .. ARGV[3]))
  -- The sweep record (sweep.lua) of a queue left without work (nothing leased, ready or delayed),
  -- and a leases set left with its pin alone (common.lua).
  local leased = drop_empty_leases(QUEUE)
  if leased == 0 and rcall('LLEN', key(QUEUE, 'wait')) == 0
    and rcall('ZCARD', key(QUEUE, 'delayed')) == 0 and
    rcall('EXISTS', key(QUEUE, 'prio')) == 0 then
    rcall('DEL', key(QUEUE, 'swept'))
  end
  flush_all()
  return 1
end
rcall('HSET', wkey, ARGV[3], (now() + ttl) .. '|' .. ARGV[5])
if rcall('PTTL', wkey) < ttl then rcall('PEXPIRE', wkey, ttl) end
return 1
