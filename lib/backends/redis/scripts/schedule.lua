--[[ schedule.lua: the queue's periodic tasks (docs/schedules.md): hash `sched`, id → JSON of the
  schedule's definition (StoredSchedule of records.ts without next, last and runs; its `gen`, a
  fresh id on every put, absent from a definition stored by an earlier worq), and hash `sstate`,
  id → "<next due>|<last due>|<runs>" (next '' once the schedule ended; last '' before the first
  run).
  KEYS[1]  a key of the queue (its slot)
  ARGV[1]  key namespace ('worq')
  ARGV[2]  queue
  ARGV[3]  'put' (ARGV[4] id, ARGV[5] definition JSON, ARGV[6] its state), 'remove' (ARGV[4] id),
           or 'fire': ARGV[4] id, ARGV[5] due (epoch ms), ARGV[6] next due ('' = the schedule
           ended), ARGV[7] the caller's client id, ARGV[8] the `gen` of the definition the caller
           read ('' = none), then an enqueue entry (admit.lua: id, runAt, record, meta), or
           nothing to skip this due time
  'put' and 'remove' tell the workers (control message 'S'). 'fire' acts only when the stored
  next due time is still `due` (one caller per due time) and the stored definition is still the
  one the caller read (its `gen`: a schedule replaced with the same next due time is not fired
  with the old call or the old limit's next): it sets the next, and with a task enqueues it, sets
  `last` and counts the run.
  Returns: 'put', 'remove': 1 when it acted, else 0; 'fire': { acted (1/0), mine, owed } (both
  lists empty when it did not act).
]]
local skey, state = key(QUEUE, 'sched'), key(QUEUE, 'sstate')
local action, id = ARGV[3], ARGV[4]
if action == 'put' then
  rcall('HSET', skey, id, ARGV[5])
  rcall('HSET', state, id, ARGV[6])
  tell(QUEUE, 'S')
  return 1
elseif action == 'remove' then
  local n = rcall('HDEL', skey, id)
  rcall('HDEL', state, id)
  if n == 1 then tell(QUEUE, 'S') end
  return n
end
if ARGV[7] ~= '' then SELF = ARGV[7] end
local v = rcall('HGET', state, id)
if not v then return { 0, NONE, NONE } end
local next_due, last, runs = string.match(v, '^([^|]*)|([^|]*)|(%d+)$')
if next_due ~= ARGV[5] then return { 0, NONE, NONE } end
-- The definition's `gen`, matched rather than decoded (the call in it may be large): no other
-- object of a definition has a key `gen`, and a quote inside a JSON string is escaped.
local gen = string.match(rcall('HGET', skey, id) or '', '"gen":"([^"]*)"') or ''
if gen ~= ARGV[8] then return { 0, NONE, NONE } end
if ARGV[9] then
  last, runs = ARGV[5], tonumber(runs) + 1
  admit(QUEUE, ARGV[9], tonumber(ARGV[10]), ARGV[11], ARGV[12])
end
rcall('HSET', state, id, ARGV[6] .. '|' .. last .. '|' .. runs)
flush_all()
return { 1, mine, owed or NONE }
