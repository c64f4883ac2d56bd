--[[ fill.lua: the step of a hand-over between slots (outbox.lua) run on the dependents' queue:
  fills argument slots of this queue's pending tasks with outcomes of tasks on other queues (a
  task whose arguments are then all there joins its line, or ends and cascades down this queue's
  graph), then drops hand-overs this queue owed that are done. Each fill counts once (fill() in
  store.lua), so a hand-over done twice changes nothing the second time. With no fills it only
  drops: the last step of a delivery, run on the queue that owed it.
  KEYS[1]  a key of the queue (its slot)
  ARGV[1]  key namespace ('worq!')
  ARGV[2]  queue
  ARGV[3]  the caller's client id: outcomes of its tasks that end here come back in the reply
           ('' = publish all)
  ARGV[4]  number of fills n, then 4 slots per fill: task id, slot, the task's generation, the
           argument's outcome
  then     number of owed fields to drop m, then the m fields
  Returns: { mine, owed }
    mine  outcomes for the caller's client: queue, id, outcome, ...
    owed  hand-overs this call's cascades owe to other queues (field, value, …)
]]
if ARGV[3] ~= '' then SELF = ARGV[3] end
local n = tonumber(ARGV[4])
for i = 1, n do
  local base = 5 + (i - 1) * 4
  local id, slot, gen, out = ARGV[base], ARGV[base + 1], ARGV[base + 2], ARGV[base + 3]
  local more, more_out = fill(QUEUE, id, slot, gen, out, string.sub(out, 1, 1) ~= 'c')
  if more then cascade(QUEUE, id, more_out, more) end
end
local m_at = 5 + n * 4
local m = tonumber(ARGV[m_at])
if m > 0 then
  local fields = {}
  for i = 1, m do fields[i] = ARGV[m_at + i] end
  rcall_list('HDEL', key(QUEUE, 'ho'), fields)
  rcall_list('ZREM', key(QUEUE, 'hos'), fields)
end
flush_all()
return { mine, owed or NONE }
