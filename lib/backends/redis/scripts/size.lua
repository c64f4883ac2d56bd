--[[ size.lua: tasks waiting to run (enqueued, delayed, held by a limit, and pending; not
  processing).
  KEYS[1]  a key of the queue (its slot)
  ARGV[1]  key namespace ('worq')
  ARGV[2]  queue
  Returns: the count.
]]
local n = redis.call('LLEN', key(QUEUE, 'wait')) + redis.call('ZCARD', key(QUEUE, 'prio')) +
  redis.call('ZCARD', key(QUEUE, 'delayed')) + redis.call('SCARD', key(QUEUE, 'pending'))
local lim = conf(QUEUE).limits
if lim then
  for lname in pairs(lim) do n = n + redis.call('ZCARD', key(QUEUE, 'lw:' .. lname)) end
end
return n
