--[[ ready.lua: reserving tasks and putting ready work in line, after common.lua and before the
  operations (scripts.ts puts them together); begin() starts every call. reserve() is what exchange.lua and a
  handover share; flush_ready() pushes what make_ready() collected and hands it to parked workers
  (hand_over()). The keys and formats are those of common.lua's header and docs/redis.md.
]]

-- The fields a reservation needs, read without decoding the header when it has the exact shape
-- encodeTask() writes for a plain task (no Deferred arguments, onError, or extra options):
-- attempts made, heartrate, keep ms, client. Ranges are checked as valid_header() checks them.
-- nil: decode and validate the header instead.
local PLAIN = '^E(%d+):{"n":"[^"\\]*","r":(%d+),"h":(%d+),"a":(%d+),"b":%["%a+",(%d+),([%d%.]+),' ..
  '(%d+)%],"u":%d+,"e":%d+,"g":"([%w_%-]*)",(.-)}\n'
local function plain_meta(rec)
  local made, r, h, a, delay, jitter, max_delay, gen, tail = string.match(rec, PLAIN)
  if not made then return nil end
  local client
  if tail == '"i":1' then
    client = ''
  else
    client = string.match(tail, '^"c":"([%w_%-]*)"$')
    if not client then return nil end
  end
  r, h, a, jitter = tonumber(r), tonumber(h), tonumber(a), tonumber(jitter)
  if r < 1 or h < 1 or a < 1 or r > MAX_MS or h > MAX_MS or a > MAX_MS or
    tonumber(delay) > MAX_MS or tonumber(max_delay) > MAX_MS or not jitter or jitter > 1 then
    return nil
  end
  return tonumber(made), h, client == '' and 0 or r, client, gen
end

-- Records of plain tasks this call wrote (enqueue.lua), by id, and their "<heartrate>|<keep ms>|
-- <client>|<gen>": reserve() takes those without a GET or reading the header.
local written, written_meta

-- Reserves up to `max` ready tasks of `queue`, the i-th with token `nonce .. '.' .. i`, taking ids
-- from `take(n)` (up to n ids, or nil when there are none left) and records from `written` or GET.
-- One HSET of tokens, one ZADD of leases. Ids whose record is gone or ended are skipped;
-- unreadable records end as BadMessage. Returns the reserved tasks (5 entries each: id, token,
-- attempt, record, slots), whether any id was taken, whether `take` ran dry, and the longest lease
-- given (ms from now).
local NO_SLOTS = {}
local function reserve(queue, max, nonce, take)
  local reserved, hset, zadd = {}, {}, {}
  local taken, drained, popped, longest = 0, false, false, 0
  while taken < max and not drained do
    local ids = take(max - taken)
    if not ids then
      drained = true
      break
    end
    popped = true
    if #ids < max - taken then drained = true end
    for _, id in ipairs(ids) do
      local rec, meta = written[id], written_meta[id]
      if not rec then rec = redis.call('GET', record(queue, id)) end
      local state = rec and string.sub(rec, 1, 1)
      local made, heartrate, slots
      if meta then
        -- Written by this call, with its meta at hand (enqueue.lua): no header to read.
        made, slots = 0, NO_SLOTS
        heartrate = tonumber(string.match(meta, '^%d+'))
      elseif state == 'E' then
        local keep, client, gen
        made, heartrate, keep, client, gen = plain_meta(rec)
        slots = NO_SLOTS
        if not made then
          local ok, m, h = pcall(parse_made, rec)
          if ok and valid_header(h) and m then
            made, heartrate, keep, client, gen = m, h.h, keep_ms(h), h.c or '', clean_gen(h.g)
            if h.d ~= nil then slots = redis.call('HGETALL', key(queue, 's:' .. id)) end
          else
            -- A record that cannot be read (written by something other than worq, or cut short)
            -- fails as a task of its own instead of failing this whole call and the tasks it
            -- popped.
            bad_message(queue, id, ok and h or nil, 'the task record cannot be read')
          end
        end
        if made then meta = heartrate .. '|' .. keep .. '|' .. client .. '|' .. gen end
      elseif state and (state == '' or not string.find('PEcfxk', state, 1, true)) then
        bad_message(queue, id, nil, 'the key holds no worq task record')
      end
      if made then
        taken = taken + 1
        local token = nonce .. '.' .. taken
        local n = #hset
        hset[n + 1] = id
        hset[n + 2] = (made + 1) .. (slots == NO_SLOTS and '|0|' or '|1|') .. meta .. '|' .. token
        local lease = lease_ms(heartrate)
        if lease > longest then longest = lease end
        zadd[n + 1] = now() + lease
        zadd[n + 2] = id
        n = #reserved
        reserved[n + 1] = id
        reserved[n + 2] = token
        reserved[n + 3] = made + 1
        reserved[n + 4] = rec
        reserved[n + 5] = slots
      end
    end
  end
  if #hset > 0 then
    redis.call('HSET', key(queue, 'tokens'), unpack(hset))
    redis.call('ZADD', key(queue, 'leases'), unpack(zadd))
  end
  return reserved, popped, drained, longest
end

-- Takes ids from the pop end of a queue's wait list (FIFO).
local function from_wait(queue)
  local wait = key(queue, 'wait')
  return function(n)
    return redis.call('RPOP', wait, n)
  end
end

-- Takes ids from a Lua list, first to last.
local function from_list(list)
  local i = 1
  return function(n)
    if i > #list then return nil end
    local ids = {}
    for j = i, math.min(i + n - 1, #list) do ids[#ids + 1] = list[j] end
    i = i + #ids
    return ids
  end, function()
    return i
  end
end

-- The worker whose exchange this is (exchange.lua sets it): never handed its own work.
local CALLER

-- Hands ready tasks of `queue` to parked workers: idle workers that asked, in their last exchange,
-- to get work as it arrives (hash `parked`: worker id -> "<slots>|<until epoch ms>|<nonce>",
-- `parks` its HGETALL). Each gets up to its slots, reserved as exchange.lua reserves, pushed as one
-- JSON array onto its handover list `h:<worker>`, which it BLPOPs: the wake and the reservation in
-- one reply. `take` gives the ready ids in order; stops when it runs dry.
local function hand_over(queue, parks, take)
  local pkey = key(queue, 'parked')
  for i = 1, #parks - 1, 2 do
    local worker = parks[i]
    -- The worker exchanging now (exchange.lua) parks again or not at its end.
    if worker ~= CALLER then
      -- A park serves handovers until its slots are taken (a worker killed while it runs that
      -- work is handed no more than it asked for; it parks again at its next exchange); one past
      -- its time is dropped. Each handover reserves under a nonce of its own: the exchange's,
      -- 'p', and how many were handed before (none for the first).
      local slots, till, nonce = string.match(parks[i + 1], '^(%d+)|(%d+)|(.+)$')
      if not (slots and tonumber(till) > now()) then
        redis.call('HDEL', pkey, worker)
      else
        local got, _, drained, longest = reserve(queue, tonumber(slots), nonce, take)
        local left = tonumber(slots) - #got / 5
        local base, before = string.match(nonce, '^(.-p)(%d*)$')
        if left > 0 and base then
          local next_nonce = base .. ((tonumber(before) or 0) + #got / 5)
          redis.call('HSET', pkey, worker, left .. '|' .. till .. '|' .. next_nonce)
        else
          redis.call('HDEL', pkey, worker)
        end
        if #got > 0 then
          local list = key(queue, 'h:' .. worker)
          redis.call('LPUSH', list, cjson.encode(got))
          -- Unpopped (the worker died parked), the reservations lapse with their leases; the
          -- sweep that finds them puts them back uncounted and deletes the list, which otherwise
          -- goes a minute after them.
          redis.call('PEXPIRE', list, longest + 60000)
        end
        if drained then return end
      end
    end
  end
end

-- The reservations in a worker's handover list that it never popped, as id, token, id, token, …;
-- the list goes.
local function unpopped(queue, worker)
  local list, found = key(queue, 'h:' .. worker), {}
  for _, message in ipairs(redis.call('LRANGE', list, 0, -1)) do
    local ok, got = pcall(cjson.decode, message)
    if ok and type(got) == 'table' then
      for j = 1, #got - 4, 5 do
        found[#found + 1] = tostring(got[j])
        found[#found + 1] = tostring(got[j + 1])
      end
    end
  end
  redis.call('DEL', list)
  return found
end

-- Puts the ids make_ready() collected in line. Where workers are parked they are handed over:
-- straight from the collected ids when nothing else waits (no trip through the wait list), else
-- from the wait list after the push. Wakes a blocked worker where the wait list was empty before
-- and ready work is left.
local function flush_ready()
  for _, queue in ipairs(ready_order) do
    local list = ready[queue]
    local wait = key(queue, 'wait')
    local parks = redis.call('HGETALL', key(queue, 'parked'))
    local from, empty = 1, nil
    if #parks > 0 then
      empty = redis.call('LLEN', wait) == 0
      if empty then
        local take, next_index = from_list(list)
        hand_over(queue, parks, take)
        from = next_index()
        parks = {}
      end
    end
    local len = 0
    for i = from, #list, 5000 do
      len = redis.call('LPUSH', wait, unpack(list, i, math.min(i + 4999, #list)))
    end
    if #parks > 0 then
      hand_over(queue, parks, from_wait(queue))
      len = redis.call('LLEN', wait)
    end
    if len > 0 and (empty or len == #list - from + 1) then wake(queue) end
  end
  ready = {}
  ready_order = {}
end

-- Starts a call (the first line of every operation): its arguments and a fresh state.
local function begin(args)
  begin_common(args)
  written, written_meta, CALLER = {}, {}, nil
end
