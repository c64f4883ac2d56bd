--[[ enqueue.lua: stores a batch of new tasks, each atomically, and puts each in line.
  KEYS[1]  a key of the queue (its slot)
  ARGV[1]  key namespace ('worq')
  ARGV[2]  queue
  ARGV[3]  the caller's client id: outcomes of its tasks that end at once (a failed Deferred
           argument, a cache hit) come back in the reply instead of being published ('' = publish)
  ARGV[4]  number of tasks n, then 4 slots per task, an enqueue entry (admit.lua): id, runAt,
           record, meta
  Returns one flat array (append() in outbox.lua): codes, mine, owed, then #mine
    codes  n integers: 1 stored, 0 duplicate (a live task holds the id)
    mine   outcomes for the caller's client: queue, id, outcome, queue, id, outcome, ...
    owed   hand-overs to other queues (outbox.lua: field, value, …), SPLIT calls only
  A task whose id is held by a live record with the same generation is reported stored (a resent
  call).
]]
if ARGV[3] ~= '' then SELF = ARGV[3] end
local n = num(ARGV[4])
local codes = {}
for t = 0, n - 1 do
  local base = 5 + t * 4
  local run_at = ARGV[base + 1]
  codes[t + 1] = admit(QUEUE, ARGV[base], run_at == '0' and 0 or tonumber(run_at), ARGV[base + 2],
    ARGV[base + 3])
end
flush_all()
local n_mine = append(codes, mine)
if owed then append(codes, owed) end
codes[#codes + 1] = n_mine
return codes
