--[[ sweep.lua: handles lapsed leases, at most once per interval across all callers, and the
  queue's housekeeping: expired cache entries, listing entries of expired outcomes.
  KEYS[1]  a key of the queue (its slot)
  ARGV[1]  key namespace ('worq')
  ARGV[2]  queue
  ARGV[3]  interval ms: the guard key `sweep` is SET NX PX interval
  ARGV[4]  a random number in [0, 1) (backoff jitter; the i-th task uses a golden-ratio step of it)
  Returns: { handled, owed }
    handled  how many tasks were handled; 0 when the guard held
    owed     hand-overs to other queues (outbox.lua) to do now: those this sweep's cascades owe,
             and those owed for more than HANDOVER_GRACE_MS (their caller died between the two
             steps: each is redone, and is due again an interval later if it is still there)
  Key `swept` holds when the queue was last swept. A sweep that comes more than 2 × interval + 1 s
  after that (stallMs() of rules.ts: Redis was paused or down, or no worker swept) acts on none
  of the leases that lapsed since: each gets one more lease from now, so that live workers renew
  first; the next sweep acts on those still lapsed.
  A lapsed task that was handed to a worker that never popped the handover (it died parked) goes
  back first in line, its attempt uncounted. Any other lapsed task with attempts left goes back
  (delayed by its backoff, in its priority); otherwise it ends `expired`
  ('x' + JSON {taskName, queue, taskId, reason, attempts}) and the expiry cascades to dependents.
  A lapsed task frees the limit slots it held. The run of each task put back or expired counts in
  the wait- and run-time histograms here (count_run() of observe.lua: its wait to its start, its
  time until now): its worker's late finish, if any, is refused and counts nothing.
]]
if not rcall('SET', key(QUEUE, 'sweep'), '1', 'NX', 'PX', ARGV[3]) then return { 0, {} } end
-- Hand-overs still owed past their grace: the caller that owed them died between the two steps.
do
  local hos = key(QUEUE, 'hos')
  local due = rcall('ZRANGE', hos, '-inf', now(), 'BYSCORE', 'LIMIT', 0, 500)
  if #due > 0 then
    local values = rcall('HMGET', key(QUEUE, 'ho'), unpack(due))
    local again = {}
    for i, f in ipairs(due) do
      if values[i] then
        owed = owed or {}
        owed[#owed + 1] = f
        owed[#owed + 1] = values[i]
        again[#again + 1] = now() + tonumber(ARGV[3])
        again[#again + 1] = f
      else
        rcall('ZREM', hos, f)
      end
    end
    if #again > 0 then rcall('ZADD', hos, unpack(again)) end
  end
end
local tokens, leases = key(QUEUE, 'tokens'), key(QUEUE, 'leases')
local random = tonumber(ARGV[4])
local reason = 'the worker stopped renewing its lease (it died, hung or lost its connection)'
cache_expire(QUEUE)
lc_step(QUEUE, 5000)
lc_scan(QUEUE, 1000)
legacy_step(QUEUE)
fold_metrics(QUEUE)
-- Parks past their time (a worker that died or stopped waiting while parked) are dropped.
local pkey = key(QUEUE, 'parked')
local parks = rcall('HGETALL', pkey)
for i = 1, #parks, 2 do
  local till = tonumber(string.match(parks[i + 1], '^t?%d+|(%d+)|'))
  if not till or till < now() then rcall('HDEL', pkey, parks[i]) end
end

-- A stall: leases that lapsed while nothing swept get one more, counted from now (the heartrate is
-- in the tokens value). Those that lapsed before the last sweep are acted on below.
local swept = key(QUEUE, 'swept')
local last = tonumber(rcall('GET', swept) or '')
if last and now() - last > 2 * tonumber(ARGV[3]) + 1000 then
  local during = rcall('ZRANGE', leases, '(' .. last, '(' .. now(), 'BYSCORE', 'LIMIT', 0, 1000)
  if #during > 0 then
    local held, zadd, orphans = rcall('HMGET', tokens, unpack(during)), {}, {}
    for i, id in ipairs(during) do
      local h = held[i] and read_held(held[i])
      if h then
        zadd[#zadd + 1] = now() + lease_ms(tonumber(h.heartrate))
        zadd[#zadd + 1] = id
      else
        orphans[#orphans + 1] = id -- a lease with no reservation behind it: nothing to keep
      end
    end
    if #zadd > 0 then rcall('ZADD', leases, 'XX', unpack(zadd)) end
    if #orphans > 0 then drop_leases(QUEUE, orphans) end
  end
  -- More lapsed in the stall than one call takes: the next sweep goes on from the same record,
  -- and nothing is acted on until every such lease has had its one more.
  if #during == 1000 then
    flush_all()
    return { 0, owed or NONE }
  end
end
-- When this sweep ran, for the next one; kept a day at most (a longer outage is taken for dead
-- workers), and dropped by a worker that unregisters from a queue left without work.
rcall('SET', swept, now(), 'PX', 86400000)

local lapsed = rcall('ZRANGE', leases, '-inf', '(' .. now(), 'BYSCORE', 'LIMIT', 0, 1000)
if #lapsed == 0 then
  drop_empty_leases(QUEUE)
  flush_all()
  return { 0, owed or NONE }
end
local fields = {}
for i, id in ipairs(lapsed) do
  fields[2 * i - 1] = id
  fields[2 * i] = 'p:' .. id
end
local held = rcall('HMGET', tokens, unpack(fields))
-- A worker whose lease lapsed is taken for dead: its park goes before its tasks are put back, so
-- they are not handed to it again. Its id is its tokens' nonce up to the last ':'.
local helds, workers = {}, {}
for i = 1, #lapsed do
  local h = held[2 * i - 1] and read_held(held[2 * i - 1])
  if h then
    helds[i] = h
    workers[i] = token_worker(h.token)
    if workers[i] then rcall('HDEL', pkey, workers[i]) end
  end
end

-- What a worker was handed and never popped (it died parked): "<id>\t<token>" -> true, read once
-- per worker.
local handed = {}
local function never_popped(w, id, token)
  if not handed[w] then
    local set, found = {}, unpopped(QUEUE, w)
    for j = 1, #found - 1, 2 do set[found[j] .. '\t' .. found[j + 1]] = true end
    handed[w] = set
  end
  return handed[w][id .. '\t' .. token] == true
end

for i, id in ipairs(lapsed) do
  local h = helds[i]
  local rec = h and rcall('GET', record(QUEUE, id))
  if rec and is_live(rec) then
    if h.holds then free_slots(QUEUE, id, h.name) end
    if workers[i] and never_popped(workers[i], id, h.token) then
      -- Handed over and never popped: it never started, so it goes back first in line, the
      -- attempt uncounted.
      released(QUEUE, id, h)
    elseif tonumber(h.attempt) < tonumber(h.attempts) then
      local r = (random + i * 0.6180339887) % 1
      local _, _, header = parse(rec)
      -- This call ends the run: it counts its wait and its time (its worker's late finish, if it
      -- comes, is refused and counts nothing, exchange.lua).
      count_run(QUEUE, header, h)
      local at = now() + backoff_delay(header.b, tonumber(h.attempt), r)
      requeue(QUEUE, id, h.attempt, at)
      event(QUEUE, 'retrying', id, h.head, { d = at - now(),
        e = { n = 'TaskExpired', m = reason, c = 'ERR_WORQ_TASK_EXPIRED' } })
      count(QUEUE, 'r', 1)
    else
      local ok, _, header = pcall(parse_made, rec)
      if ok then count_run(QUEUE, header, h) end
      local out = expired_outcome(h.name, QUEUE, id, reason, tonumber(h.attempt))
      h.holds = false -- freed above
      settle(QUEUE, id, out, { held = h, progress = held[2 * i] or nil })
    end
  end
end
rcall('HDEL', tokens, unpack(fields))
drop_leases(QUEUE, lapsed)
drop_empty_leases(QUEUE)
flush_all()
return { #lapsed, owed or NONE }
