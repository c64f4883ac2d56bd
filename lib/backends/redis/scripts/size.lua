--[[ size.lua: tasks waiting to run (enqueued, delayed, held by a limit, and pending; not
  processing).
  KEYS[1]  a key of the queue (its slot)
  ARGV[1]  key namespace ('worq')
  ARGV[2]  queue
  Returns: the count.
]]
local n = rcall('LLEN', key(QUEUE, 'wait')) + rcall('ZCARD', key(QUEUE, 'prio')) +
  rcall('ZCARD', key(QUEUE, 'delayed')) + rcall('SCARD', key(QUEUE, 'pending'))
local lim = conf(QUEUE).limits
if lim then
  for lname in pairs(lim) do n = n + rcall('ZCARD', key(QUEUE, 'lw:' .. lname)) end
end
return n
