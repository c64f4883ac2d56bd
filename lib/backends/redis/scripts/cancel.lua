--[[ cancel.lua: cancels one task that has not ended: pending, enqueued (delayed, held by a limit)
  or processing (its worker is told on the queue's control channel; its finish will be refused
  without a report).
  KEYS[1]  a key of the queue (its slot)
  ARGV[1]  key namespace ('worq')
  ARGV[2]  queue
  ARGV[3]  task id
  Returns: { done, owed }
    done  1 cancelled (outcome 'k' + JSON {taskName, queue, taskId}, cascading to dependents),
          2 the same for a task a worker held (it is told on the control channel), 0 not
          cancellable (unknown or finished)
    owed  hand-overs to dependents on other queues (outbox.lua), SPLIT calls only
]]
local held = rcall('HEXISTS', key(QUEUE, 'tokens'), ARGV[3]) == 1
local done = cancel_one(QUEUE, ARGV[3], false)
if done and rcall('LLEN', key(QUEUE, 'wait')) == 0 and
  rcall('EXISTS', key(QUEUE, 'prio')) == 0 then
  rcall('DEL', key(QUEUE, 'wake'))
end
flush_all()
return { done and (held and 2 or 1) or 0, owed or NONE }
