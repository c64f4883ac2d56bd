--[[ progress.lua: stores the latest progress of running tasks and delivers it.
  KEYS[1]  a key of the queue (its slot)
  ARGV[1]  key namespace ('worq')
  ARGV[2]  queue
  ARGV[3]  the caller's client id: progress of its own tasks comes back in the reply ('' = publish)
  ARGV[4]  number of updates n, then 3 slots per update: id, token, value (serialized)
  An update whose token no longer matches (the lease was lost, the task cancelled) is dropped.
  A kept value is the tokens hash field `p:<id>`, until the task ends (its outcome keeps it); it
  goes to the client that enqueued the task as 'p' .. value, and as a `progress` event.
  Returns: mine (progress for the caller's client: queue, id, 'p' .. value, …).
]]
if ARGV[3] ~= '' then SELF = ARGV[3] end
local n = tonumber(ARGV[4])
local tokens = key(QUEUE, 'tokens')
local ids = {}
for i = 1, n do ids[i] = ARGV[2 + i * 3] end
local held = rcall_read('HMGET', tokens, ids)
local set = {}
for i = 1, n do
  local base = 2 + i * 3
  local h = held[i] and read_held(held[i])
  if h and h.token == ARGV[base + 1] then
    local value = ARGV[base + 2]
    set[#set + 1] = 'p:' .. ids[i]
    set[#set + 1] = value
    if h.client ~= '' then deliver(h.client, QUEUE, ids[i], 'p' .. value) end
    event(QUEUE, 'progress', ids[i], h.head, { p = value })
  end
end
if #set > 0 then rcall_list('HSET', tokens, set) end
flush_all()
return mine
