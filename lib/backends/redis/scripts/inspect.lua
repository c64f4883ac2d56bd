--[[ inspect.lua: counts of a queue, whether it is paused, and its live workers.
  KEYS[1]  a key of the queue (its slot)
  ARGV[1]  key namespace ('worq')
  ARGV[2]  queue
  Returns: { waiting (ready or held by a limit), delayed, pending, processing, oldest ready time
             (epoch ms, -1 = none), now, workers (flat id/JSON list of registrations whose time
             has not lapsed), paused (0/1) }
  The oldest ready time is the later of the task's enqueue time and its runAt (a dependent counts
  from its enqueue). Lapsed worker registrations are removed.
]]
local wait = key(QUEUE, 'wait')
local oldest = -1
local last = rcall('LINDEX', wait, -1)
if not last then
  local first = rcall('ZRANGE', key(QUEUE, 'prio'), 0, 0)
  last = first[1]
end
if last then
  local rec = rcall('GET', record(QUEUE, last))
  if rec and is_live(rec) then
    local _, _, h = parse(rec)
    oldest = math.max(h.e or 0, h.u or 0)
  end
end
local wkey = key(QUEUE, 'workers')
local workers, dead = {}, {}
local all = rcall('HGETALL', wkey)
for i = 1, #all, 2 do
  local until_ms = tonumber(string.match(all[i + 1], '^(%d+)|'))
  if until_ms and until_ms > now() then
    workers[#workers + 1] = all[i]
    workers[#workers + 1] = string.sub(all[i + 1], #tostring(until_ms) + 2)
  else
    dead[#dead + 1] = all[i]
  end
end
if #dead > 0 then rcall('HDEL', wkey, unpack(dead)) end
local waiting = rcall('LLEN', wait) + rcall('ZCARD', key(QUEUE, 'prio'))
local lim = conf(QUEUE).limits
if lim then
  for lname in pairs(lim) do waiting = waiting + rcall('ZCARD', key(QUEUE, 'lw:' .. lname)) end
end
return { waiting, rcall('ZCARD', key(QUEUE, 'delayed')),
  rcall('SCARD', key(QUEUE, 'pending')), lease_count(QUEUE), oldest,
  now(), workers, conf(QUEUE).paused and 1 or 0 }
