--[[ cancel.lua: cancels one pending, enqueued or delayed task (not a processing one).
  KEYS: none declared (built from ARGV[1..2] by key() in common.lua).
  ARGV[1]  key namespace ('worq')
  ARGV[2]  queue
  ARGV[3]  task id
  Returns: 1 cancelled (outcome 'k' + JSON {taskName, queue, taskId}, cascading to dependents),
           0 not cancellable (unknown, processing or finished).
]]
local done = cancel_one(QUEUE, ARGV[3], false)
if done and redis.call('LLEN', key(QUEUE, 'wait')) == 0 then redis.call('DEL', key(QUEUE, 'wake')) end
flush_ready()
flush_outbox()
return done and 1 or 0
