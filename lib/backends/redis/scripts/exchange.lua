--[[ exchange.lua: finish-and-fetch. Finishes a worker's ended tasks, promotes due delayed tasks,
  then reserves up to `max` ready tasks, in one call; parks the worker when fewer were ready.
  KEYS: none declared (built from ARGV[1..2] by key() in common.lua).
  ARGV[1]  key namespace ('worq')
  ARGV[2]  queue
  ARGV[3]  nonce: unique per call; token of the i-th reservation = nonce .. '.' .. i
  ARGV[4]  max: how many tasks to reserve
  ARGV[5]  '1' when the caller was woken by a wake marker (then it passes the wake on if it leaves
           ready work behind)
  ARGV[6]  the caller's client id: outcomes of tasks it enqueued come back in the reply instead of
           being published ('' = publish all)
  ARGV[7]  worker id
  ARGV[8]  park ms: when fewer than `max` were ready, hold the slots left (max - reserved, at most
           ARGV[9]) for handover (hand_over() in ready.lua) for this long at most (0 = do not park)
  ARGV[9]  park slots: the most tasks to hand over
  ARGV[10] number of finishes f, then 4 slots per finish:
    id, token, outcome (the outcome string), retryAt (epoch ms, '' = finish for good, 'release' =
    never started: back first in line, its attempt uncounted)
  A call that reserved tasks, or finished an ignoreResult task (whose record goes), leaves a memo
  `l:<worker>`: its nonce, a newline, then JSON of its stale ids and the ids and tokens it
  reserved, PX the longest lease among those it gave and those it ended, deleted by the worker's
  next call that neither reserves nor ends such a task. The same call resent (same nonce) is
  answered from it.
  Returns: { stale, reserved, nextDueIn, mine }
    stale     ids whose token no longer matched (lease lost): refused, nothing changed. A finish
              for good whose task's stored outcome carries this token's tag, or a retry whose
              task's record does (header `f`), is not stale: this very call applied it before (a
              resend, ioredis sending the call again after its reply was lost). A release is never
              stale: refused or not, the task never started, so no run was lost.
    reserved  5 entries per task: id, token, attempt, record, slots (flat field/value list)
    nextDueIn ms until the earliest delayed task is due when fewer than `max` were reserved, else -1
    mine      outcomes for the caller's client: queue, id, outcome, queue, id, outcome, ...
  Tokens hash value of a processing task:
  "<attempt>|<has slots 0/1>|<heartrate>|<keep ms>|<client>|<generation>|<token>".
]]
local tokens, leases = key(QUEUE, 'tokens'), key(QUEUE, 'leases')
local wait, delayed = key(QUEUE, 'wait'), key(QUEUE, 'delayed')
local nonce, max, woken = ARGV[3], tonumber(ARGV[4]), ARGV[5] == '1'
if ARGV[6] ~= '' then SELF = ARGV[6] end
local worker, park, park_slots = ARGV[7], tonumber(ARGV[8]), tonumber(ARGV[9])
CALLER = worker
local nf = tonumber(ARGV[10])
local stale = {}
-- The longest lease among the tasks this call finished and dropped (ignoreResult: no outcome is
-- kept, so nothing would mark the finish for a resend): the memo below then stays that long.
local dropped = 0
local parked = key(QUEUE, 'parked')

-- This very call again (ioredis resends a command whose reply was lost with its connection): its
-- finishes and reservations were made by the first run, which left a memo (below). Answer as that
-- run did, with the reservations still held under their tokens; outcomes the lost reply carried
-- reach their waiters through the re-check every reconnect makes.
local memo_key = key(QUEUE, 'l:' .. worker)
local memo = redis.call('GET', memo_key)
if memo and string.sub(memo, 1, #nonce + 1) == nonce .. '\n' then
  local first = cjson.decode(string.sub(memo, #nonce + 2))
  local again = {}
  for i = 1, #first[2] - 1, 2 do
    local id, token = first[2][i], first[2][i + 1]
    local held = redis.call('HGET', tokens, id)
    local attempt, slots, held_token, _
    if held then attempt, _, slots, _, _, held_token = read_held(held) end
    local rec = held_token == token and redis.call('GET', record(QUEUE, id))
    if rec then
      local n = #again
      again[n + 1] = id
      again[n + 2] = token
      again[n + 3] = tonumber(attempt)
      again[n + 4] = rec
      again[n + 5] = slots == '1' and redis.call('HGETALL', key(QUEUE, 's:' .. id)) or NO_SLOTS
    end
  end
  return { first[1], again, -1, {} }
end

if nf > 0 then
  local ids = {}
  for i = 1, nf do ids[i] = ARGV[7 + i * 4] end
  local held = redis.call('HMGET', tokens, unpack(ids))
  local deps = redis.call('HMGET', key(QUEUE, 'dependents'), unpack(ids))
  local gone, had_deps = {}, {}
  for i = 1, nf do
    local base = 7 + i * 4
    local id, token, outcome, retry_at = ids[i], ARGV[base + 1], ARGV[base + 2], ARGV[base + 3]
    local attempt, keep, slots, client, gen, held_token, heartrate
    if held[i] then
      attempt, keep, slots, client, gen, held_token, heartrate = read_held(held[i])
    end
    if held_token ~= token then
      -- Refused. Reported, unless this very call finished or retried it already (its reply lost,
      -- the call resent), or it is a release: a task that never started lost no run, whoever
      -- holds it now (and a release leaves no mark a resend could recognise).
      local quiet
      if retry_at == 'release' then
        quiet = true
      elseif retry_at == '' then
        quiet = finished_by(QUEUE, id, token)
      else
        quiet = requeued_by(QUEUE, id, token)
      end
      if not quiet then stale[#stale + 1] = id end
    else
      gone[#gone + 1] = id
      if retry_at == 'release' then
        release(QUEUE, id)
      elseif retry_at ~= '' then
        requeue(QUEUE, id, attempt, tonumber(retry_at), token_tag(token))
      else
        if deps[i] then had_deps[#had_deps + 1] = id end
        settle(QUEUE, id, outcome, tonumber(keep), client, slots == '1', deps[i], gen,
          token_tag(token))
        if keep == '0' then dropped = math.max(dropped, lease_ms(tonumber(heartrate))) end
      end
    end
  end
  if #gone > 0 then
    redis.call('HDEL', tokens, unpack(gone))
    redis.call('ZREM', leases, unpack(gone))
  end
  if #had_deps > 0 then redis.call('HDEL', key(QUEUE, 'dependents'), unpack(had_deps)) end
end

-- Promote due delayed tasks (FIFO by due time), looking at the earliest one first.
local first = earliest_due(QUEUE)
if first and first <= now() then
  local due = redis.call('ZRANGE', delayed, '-inf', now(), 'BYSCORE', 'LIMIT', 0, 1000)
  redis.call('ZREM', delayed, unpack(due))
  for _, id in ipairs(due) do make_ready(QUEUE, id, 0) end
  earliest[QUEUE] = nil
end
flush_ready()

local reserved, longest = {}, 0
if max > 0 then
  local popped, drained
  reserved, popped, drained, longest = reserve(QUEUE, max, nonce, from_wait(QUEUE))
  -- Drained: no marker may outlive the ready work. Else pass the wake on: a woken worker that
  -- leaves ready work behind wakes the next one.
  -- A call that popped nothing leaves the markers alone: one may announce a delayed task's due time.
  if popped and (drained or redis.call('LLEN', wait) == 0) then
    redis.call('DEL', key(QUEUE, 'wake'))
  elseif popped and woken then
    wake(QUEUE)
  end
end

local next_due = -1
local parks = false
if #reserved < 5 * max then
  local due = earliest_due(QUEUE)
  if due then next_due = math.max(0, due - now()) end
  -- Park: the slots left are filled by the next enqueue, through the worker's handover list,
  -- until the worker's wait would end.
  local slots = math.min(max - #reserved / 5, park_slots)
  if park > 0 and slots > 0 then
    parks = true
    local till = park
    if next_due >= 0 and next_due < till then till = next_due end
    redis.call('HSET', parked, worker, slots .. '|' .. (now() + till) .. '|' .. nonce .. 'p')
    -- A park dropped early is harmless (the enqueue wakes the worker with a marker instead): the
    -- hash lives as long as the latest park.
    redis.call('PEXPIRE', parked, till + 1000)
  end
end
-- Whatever this worker asked before, it is not waiting now.
if not parks then redis.call('HDEL', parked, worker) end
-- The memo a resend of this call is answered from (above): what it refused and what it reserved,
-- kept as long as those leases (a resend after that finds the tasks swept anyway). A call that
-- dropped a finished task's record leaves one too, for as long as that task's lease: a resend
-- would find nothing else to tell its own finish from a lost lease.
if #reserved > 0 or dropped > 0 then
  local ids = {}
  for i = 1, #reserved, 5 do
    ids[#ids + 1] = reserved[i]
    ids[#ids + 1] = reserved[i + 1]
  end
  redis.call('SET', memo_key, nonce .. '\n' .. cjson.encode({ stale, ids }), 'PX',
    math.max(longest, dropped))
elseif memo then
  -- A worker's calls follow one another: this one means the last reply arrived.
  redis.call('DEL', memo_key)
end
flush_outbox()
return { stale, reserved, next_due, mine }
