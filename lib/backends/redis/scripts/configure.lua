--[[ configure.lua: changes the queue's settings (hash `conf`), or pauses and resumes it.
  KEYS[1]  a key of the queue (its slot)
  ARGV[1]  key namespace ('worq')
  ARGV[2]  queue
  ARGV[3]  'set', then field, value pairs (events, metrics, listing as '1'/'0'; evmax, csize,
           cttl as numbers)
           'pause' or 'resume'
  Returns: for 'set', the settings hash (flat); for 'pause'/'resume', 1 when the state changed.
  Pausing drops the parks (nothing is handed over) and emits `paused` (event, control message
  'P'); resuming emits `resumed` ('R') and wakes a worker when work waits. A smaller cacheSize
  evicts at once.
]]
local ckey = key(QUEUE, 'conf')
local action = ARGV[3]
if action == 'set' then
  local set = {}
  for i = 4, #ARGV do set[#set + 1] = ARGV[i] end
  if #set > 0 then rcall('HSET', ckey, unpack(set)) end
  confs[QUEUE] = nil
  cache_trim(QUEUE)
  return rcall('HGETALL', ckey)
end
local paused = action == 'pause'
if conf(QUEUE).paused == paused then return 0 end
if paused then
  rcall('HSET', ckey, 'paused', '1')
  rcall('DEL', key(QUEUE, 'parked'))
  event(QUEUE, 'paused', '', '', false)
  tell(QUEUE, 'P')
else
  rcall('HDEL', ckey, 'paused')
  event(QUEUE, 'resumed', '', '', false)
  tell(QUEUE, 'R')
  if rcall('LLEN', key(QUEUE, 'wait')) + rcall('ZCARD', key(QUEUE, 'prio')) > 0 then
    wake(QUEUE)
  end
end
flush_all()
return 1
