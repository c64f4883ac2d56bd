--[[ status.lua: what is known of one task.
  KEYS: none declared (built from ARGV[1..2] by key() in common.lua).
  ARGV[1]  key namespace ('worq')
  ARGV[2]  queue
  ARGV[3]  task id
  Returns: nil when unknown; the outcome string of a finished task; 'P' pending; 'E' enqueued or
  delayed; 'R' processing.
]]
local rec = redis.call('GET', record(QUEUE, ARGV[3]))
if not rec then return nil end
local state = string.sub(rec, 1, 1)
if state == 'P' then return 'P' end
if state ~= 'E' then return stored_outcome(rec) end
if redis.call('HEXISTS', key(QUEUE, 'tokens'), ARGV[3]) == 1 then return 'R' end
return 'E'
