--[[ link.lua: the second step of registering dependents on another slot (outbox.lua, hand-overs):
  run on the queue of the Deferred arguments. Each link registers a task of another queue as a
  dependent of an argument task of this queue that has not ended, once (a link done again finds
  its line there), or answers with the argument's outcome when it has ended (an expiry when it is
  gone).
  KEYS[1]  a key of the queue (its slot)
  ARGV[1]  key namespace ('worq!')
  ARGV[2]  queue (of the arguments)
  ARGV[3]  number of links n, then 5 slots per link: the dependent's queue, its id, its argument
           slot, its generation, and the argument's id on this queue
  Returns: n strings: '' registered (the argument has not ended), else the argument's outcome
]]
local out = {}
for i = 1, tonumber(ARGV[3]) do
  local base = 4 + (i - 1) * 5
  local dq, did, slot, gen, aid = ARGV[base], ARGV[base + 1], ARGV[base + 2], ARGV[base + 3],
    ARGV[base + 4]
  local arg = rcall('GET', record(QUEUE, aid))
  if arg and is_live(arg) then
    add_dependent(QUEUE, aid, dq .. '\t' .. did .. '\t' .. slot .. '\t' .. gen .. '\n', true)
    out[i] = ''
  else
    out[i] = arg and stored_outcome(arg) or expired_outcome('unknown', QUEUE, aid, GONE)
  end
end
return out
