--[[ limit.lua: sets or removes a limit of the queue (docs/limits.md).
  KEYS[1]  a key of the queue (its slot)
  ARGV[1]  key namespace ('worq')
  ARGV[2]  queue
  ARGV[3]  limit name (a dotted task name, a prefix ending in '.', or '*')
  ARGV[4]  the limit as JSON {c = concurrency, r = {max, per}}, or '' to remove it
  The limits are the field `lim` of `conf`. Removing one deletes its keys (`lc:`, `lr:`, `lw:`)
  and puts the tasks that waited for it back first in their lines; any change wakes a worker
  (a raised limit may let waiting tasks start, which then come back through their lines).
  Returns: 1 when something changed, else 0.
]]
local ckey = key(QUEUE, 'conf')
local lname, spec = ARGV[3], ARGV[4]
local lim = conf(QUEUE).limits or {}
local before = lim[lname] and cjson.encode(lim[lname]) or ''
if spec == '' then
  if before == '' then return 0 end
  local waiting = rcall('ZRANGE', key(QUEUE, 'lw:' .. lname), 0, -1, 'WITHSCORES')
  rcall('DEL', key(QUEUE, 'lc:' .. lname), key(QUEUE, 'lr:' .. lname),
    key(QUEUE, 'lw:' .. lname))
  lim[lname] = nil
  for i = #waiting - 1, 1, -2 do
    put_first(QUEUE, waiting[i], math.floor(tonumber(waiting[i + 1]) / PRIO_UNIT))
  end
else
  lim[lname] = cjson.decode(spec)
end
if next(lim) then
  rcall('HSET', ckey, 'lim', cjson.encode(lim))
else
  rcall('HDEL', ckey, 'lim')
end
-- Tasks waiting for a limit that was raised: give each of its free slots to one of them.
if spec ~= '' and lim[lname].c then
  local free = lim[lname].c - rcall('HLEN', key(QUEUE, 'lc:' .. lname))
  if free > 0 then
    local up = rcall('ZPOPMIN', key(QUEUE, 'lw:' .. lname), free)
    for i = #up - 1, 1, -2 do put_first(QUEUE, up[i], math.floor(tonumber(up[i + 1]) / PRIO_UNIT)) end
  end
end
if not conf(QUEUE).paused then wake(QUEUE) end
return before == (spec == '' and '' or cjson.encode(lim[lname])) and 0 or 1
