--[[ sweep.lua: handles lapsed leases, at most once per interval across all callers.
  KEYS: none declared (built from ARGV[1..2] by key() in common.lua).
  ARGV[1]  key namespace ('worq')
  ARGV[2]  queue
  ARGV[3]  interval ms: the guard key `sweep` is SET NX PX interval
  ARGV[4]  a random number in [0, 1) (backoff jitter; the i-th task uses a golden-ratio step of it)
  Returns: how many tasks were handled; 0 when the guard held.
  Key `swept` holds when the queue was last swept. A sweep that comes more than 2 × interval + 1 s
  after that (stallMs() of backend.ts: Redis was paused or down, or no worker swept) acts on none
  of the leases that lapsed since: each gets one more lease from now, so that live workers renew
  first; the next sweep acts on those still lapsed.
  A lapsed task that was handed to a worker that never popped the handover (it died parked) goes
  back first in line, its attempt uncounted. Any other lapsed task with attempts left goes back
  (delayed by its backoff); otherwise it ends `expired`
  ('x' + JSON {taskName, queue, taskId, reason, attempts}) and the expiry cascades to dependents.
]]
if not redis.call('SET', key(QUEUE, 'sweep'), '1', 'NX', 'PX', ARGV[3]) then return 0 end
local tokens, leases = key(QUEUE, 'tokens'), key(QUEUE, 'leases')
local random = tonumber(ARGV[4])
local reason = 'the worker stopped renewing its lease (it died, hung or lost its connection)'
-- Parks past their time (a worker that died or stopped waiting while parked) are dropped.
local pkey = key(QUEUE, 'parked')
local parks = redis.call('HGETALL', pkey)
for i = 1, #parks, 2 do
  local till = tonumber(string.match(parks[i + 1], '^%d+|(%d+)|'))
  if not till or till < now() then redis.call('HDEL', pkey, parks[i]) end
end

-- A stall: leases that lapsed while nothing swept get one more, counted from now (the heartrate is
-- in the tokens value). Those that lapsed before the last sweep are acted on below.
local swept = key(QUEUE, 'swept')
local last = tonumber(redis.call('GET', swept) or '')
if last and now() - last > 2 * tonumber(ARGV[3]) + 1000 then
  local during = redis.call('ZRANGE', leases, '(' .. last, '(' .. now(), 'BYSCORE', 'LIMIT', 0, 1000)
  if #during > 0 then
    local held, zadd, orphans = redis.call('HMGET', tokens, unpack(during)), {}, {}
    for i, id in ipairs(during) do
      local heartrate = held[i] and tonumber((select(7, read_held(held[i]))))
      if heartrate then
        zadd[#zadd + 1] = now() + lease_ms(heartrate)
        zadd[#zadd + 1] = id
      else
        orphans[#orphans + 1] = id -- a lease with no reservation behind it: nothing to keep
      end
    end
    if #zadd > 0 then redis.call('ZADD', leases, 'XX', unpack(zadd)) end
    if #orphans > 0 then redis.call('ZREM', leases, unpack(orphans)) end
  end
  -- More lapsed in the stall than one call takes: the next sweep goes on from the same record,
  -- and nothing is acted on until every such lease has had its one more.
  if #during == 1000 then return 0 end
end
-- When this sweep ran, for the next one; kept a day at most (a longer outage is taken for dead
-- workers), and dropped by a worker that unregisters from a queue left without work.
redis.call('SET', swept, now(), 'PX', 86400000)

local lapsed = redis.call('ZRANGE', leases, '-inf', '(' .. now(), 'BYSCORE', 'LIMIT', 0, 1000)
if #lapsed == 0 then return 0 end
local held = redis.call('HMGET', tokens, unpack(lapsed))
-- A worker whose lease lapsed is taken for dead: its park goes before its tasks are put back, so
-- they are not handed to it again. Its id is its tokens' nonce up to the last ':'.
local attempts, tokens_of, workers = {}, {}, {}
for i = 1, #lapsed do
  if held[i] then
    local attempt, _, _, _, _, token = read_held(held[i])
    attempts[i], tokens_of[i] = tonumber(attempt), token
    workers[i] = token and token_worker(token)
    if workers[i] then redis.call('HDEL', pkey, workers[i]) end
  end
end

-- What a worker was handed and never popped (it died parked): "<id>\t<token>" -> true, read once
-- per worker.
local handed = {}
local function never_popped(worker, id, token)
  if not handed[worker] then
    local set, found = {}, unpopped(QUEUE, worker)
    for j = 1, #found - 1, 2 do set[found[j] .. '\t' .. found[j + 1]] = true end
    handed[worker] = set
  end
  return handed[worker][id .. '\t' .. token] == true
end

for i, id in ipairs(lapsed) do
  local attempt, token = attempts[i], tokens_of[i]
  local rec = redis.call('GET', record(QUEUE, id))
  if attempt and rec and is_live(rec) and workers[i] and never_popped(workers[i], id, token) then
    -- Handed over and never popped: it never started, so it goes back first in line, the
    -- attempt uncounted.
    release(QUEUE, id)
  elseif attempt and rec and is_live(rec) then
    local _, _, h = parse(rec)
    if attempt < h.a then
      local r = (random + i * 0.6180339887) % 1
      requeue(QUEUE, id, attempt, now() + backoff_delay(h.b, attempt, r))
    else
      local out = expired_outcome(h.n, QUEUE, id, reason, attempt)
      settle(QUEUE, id, out, keep_ms(h), h.c, h.d ~= nil, nil, clean_gen(h.g))
    end
  end
end
redis.call('HDEL', tokens, unpack(lapsed))
redis.call('ZREM', leases, unpack(lapsed))
flush_ready()
flush_outbox()
return #lapsed
