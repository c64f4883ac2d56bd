--[[ purge.lua: one step of a purge: takes up to ARGV[3] waiting tasks of a queue out of their
  lines (pending first, then ready, by priority, delayed and held by a limit) and cancels them.
  Pending first, as on the other backends: a dependent is cancelled (and counted) itself rather
  than ended by its argument's cascade; one that a cascade of this step ended first is counted
  too. Processing
  tasks are left alone. The caller repeats the step until the queue has none left or it has taken
  as many as there were at its first step, so that no one call holds the server for long (a purge
  of 100 000 tasks in one call held it 2.5 s).
  KEYS[1]  a key of the queue (its slot)
  ARGV[1]  key namespace ('worq')
  ARGV[2]  queue
  ARGV[3]  most tasks to take in this step
  Returns: { count, owed, taken, left }: how many tasks were cancelled, hand-overs to dependents
  on other queues (outbox.lua, SPLIT calls only), how many ids were taken out of the lines, and how
  many waiting tasks are left.
]]
local budget = tonumber(ARGV[3])
local wait, prio, delayed = key(QUEUE, 'wait'), key(QUEUE, 'prio'), key(QUEUE, 'delayed')
local pending = key(QUEUE, 'pending')
local lim = conf(QUEUE).limits
local ids = {}

local function take(list)
  for _, id in ipairs(list) do ids[#ids + 1] = id end
end

local function room()
  return budget - #ids
end

-- Pending tasks taken: a chain of them ends together (cancelling one cascades to the others), so
-- each is counted when the step leaves it cancelled, whichever of them was cancelled first.
local was_pending = {}
if room() > 0 then
  take(rcall('SPOP', pending, digits(room())))
  for _, id in ipairs(ids) do was_pending[id] = true end
end
if room() > 0 then take(rcall('RPOP', wait, digits(room())) or {}) end
if room() > 0 then
  local popped = rcall('ZPOPMIN', prio, digits(room()))
  for i = 1, #popped, 2 do ids[#ids + 1] = popped[i] end
end
if room() > 0 then
  local members = rcall('ZRANGE', delayed, '0', digits(room() - 1))
  if #members > 0 then
    rcall('ZREM', delayed, unpack(members))
    for _, m in ipairs(members) do ids[#ids + 1] = (split_member(m)) end
  end
end
if lim then
  for lname in pairs(lim) do
    if room() <= 0 then break end
    local popped = rcall('ZPOPMIN', key(QUEUE, 'lw:' .. lname), digits(room()))
    for i = 1, #popped, 2 do ids[#ids + 1] = popped[i] end
  end
end

-- True for a pending task taken by this step that a cascade of it has already cancelled: its
-- record is now a cancelled outcome, or gone (ignoreResult).
local function cascaded(id)
  if not was_pending[id] then return false end
  local now_rec = rcall('GET', record(QUEUE, id))
  return not now_rec or string.sub(now_rec, 1, 1) == 'k'
end

local count = 0
local function cancel_all(list)
  for _, id in ipairs(list) do
    if cancel_one(QUEUE, id, true) or cascaded(id) then count = count + 1 end
  end
end
cancel_all(ids)
-- A cascade with onError 'pass' makes dependents ready: those of this queue are purged too (and
-- counted), not put in line, where a parked worker could be handed them.
while ready[QUEUE] do
  local list, plist = ready[QUEUE], ready_prio[QUEUE]
  ready[QUEUE], ready_prio[QUEUE] = nil, nil
  for i = 1, #plist, 2 do list[#list + 1] = plist[i] end
  cancel_all(list)
end
for i = #ready_order, 1, -1 do
  if ready_order[i] == QUEUE then table.remove(ready_order, i) end
end
flush_all()

local left = rcall('LLEN', wait) + rcall('ZCARD', prio) + rcall('ZCARD', delayed)
  + rcall('SCARD', pending)
if lim then
  for lname in pairs(lim) do left = left + rcall('ZCARD', key(QUEUE, 'lw:' .. lname)) end
end
if left == 0 then rcall('DEL', key(QUEUE, 'wake')) end
return { count, owed or NONE, #ids, left }
