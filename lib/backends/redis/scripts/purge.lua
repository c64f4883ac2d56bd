--[[ purge.lua: cancels every waiting task of a queue: enqueued (ready, delayed, held by a limit)
  and pending. Processing tasks are left alone.
  KEYS[1]  a key of the queue (its slot)
  ARGV[1]  key namespace ('worq')
  ARGV[2]  queue
  Returns: { count, owed }: how many tasks were cancelled, and hand-overs to dependents on other
  queues (common.lua), SPLIT calls only.
]]
local wait, prio, delayed = key(QUEUE, 'wait'), key(QUEUE, 'prio'), key(QUEUE, 'delayed')
local pending = key(QUEUE, 'pending')
local ids = rcall('LRANGE', wait, 0, -1)
for _, id in ipairs(rcall('ZRANGE', prio, 0, -1)) do ids[#ids + 1] = id end
for _, m in ipairs(rcall('ZRANGE', delayed, 0, -1)) do ids[#ids + 1] = (split_member(m)) end
for _, id in ipairs(rcall('SMEMBERS', pending)) do ids[#ids + 1] = id end
local gone = { wait, prio, delayed, pending }
local lim = conf(QUEUE).limits
if lim then
  for lname in pairs(lim) do
    local lw = key(QUEUE, 'lw:' .. lname)
    for _, id in ipairs(rcall('ZRANGE', lw, 0, -1)) do ids[#ids + 1] = id end
    gone[#gone + 1] = lw
  end
end
rcall('DEL', unpack(gone))
local count = 0
for _, id in ipairs(ids) do
  if cancel_one(QUEUE, id, true) then count = count + 1 end
end
-- A cascade with onError 'pass' may have put a purged dependent back in line: all are gone now.
ready[QUEUE] = nil
ready_prio[QUEUE] = nil
for i, q in ipairs(ready_order) do
  if q == QUEUE then
    table.remove(ready_order, i)
    break
  end
end
flush_all()
rcall('DEL', delayed, prio, key(QUEUE, 'wake'))
return { count, owed or NONE }
