--[[ size.lua: tasks waiting to run (enqueued, delayed and pending; not processing).
  KEYS: none declared (built from ARGV[1..2] by key() in common.lua).
  ARGV[1]  key namespace ('worq')
  ARGV[2]  queue
  Returns: the count.
]]
return redis.call('LLEN', key(QUEUE, 'wait')) + redis.call('ZCARD', key(QUEUE, 'delayed')) +
  redis.call('SCARD', key(QUEUE, 'pending'))
