--[[ purge.lua: cancels every waiting task of a queue: enqueued, delayed and pending.
  KEYS: none declared (built from ARGV[1..2] by key() in common.lua).
  ARGV[1]  key namespace ('worq')
  ARGV[2]  queue
  Returns: how many tasks were cancelled (processing tasks are left alone).
]]
local wait, delayed, pending = key(QUEUE, 'wait'), key(QUEUE, 'delayed'), key(QUEUE, 'pending')
local ids = redis.call('LRANGE', wait, 0, -1)
for _, id in ipairs(redis.call('ZRANGE', delayed, 0, -1)) do ids[#ids + 1] = id end
for _, id in ipairs(redis.call('SMEMBERS', pending)) do ids[#ids + 1] = id end
redis.call('DEL', wait, delayed, pending)
local count = 0
for _, id in ipairs(ids) do
  if cancel_one(QUEUE, id, true) then count = count + 1 end
end
-- A cascade with onError 'pass' may have put a purged dependent back in line: all are gone now.
ready[QUEUE] = nil
for i, q in ipairs(ready_order) do
  if q == QUEUE then table.remove(ready_order, i) break end
end
flush_ready()
redis.call('DEL', delayed, key(QUEUE, 'wake'))
flush_outbox()
return count
