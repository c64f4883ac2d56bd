--[[ ready.lua: reserving tasks and putting ready work in line, after the other helpers and before
  the operations (lua-source.ts puts them together); begin() starts every call. reserve() is what
  exchange.lua and a handover share; flush_ready() pushes what make_ready() collected and hands it
  to parked workers (hand_over()). The keys and formats are those of common.lua, outbox.lua and
  docs/redis.md.
]]

-- The fields a reservation needs, read without decoding the header when it has the exact shape
-- encodeTask() writes for a plain task (no Deferred arguments, onError, priority, metadata, cache
-- or extra options): attempts made, heartrate (text), name, and the reservation's meta (read_held()
-- in outbox.lua). Ranges are checked as valid_header() checks them, on the text as encodeTask()
-- writes numbers (no leading zero, no sign, no exponent): a number parsed costs about 1 200
-- instructions, and most of these only pass through. nil: decode and validate the header instead.
local PLAIN = '^E(%d+):{"n":"([^"\\]*)","r":(%d+),"h":(%d+),"a":(%d+),"b":%["%a+",(%d+),' ..
  '([%d%.]+),(%d+)%],"u":(%d+),"e":(%d+),"g":"([%w_%-]*)",(.-)}\n'

-- True for the text of a whole number from `min` (0 or 1) to MAX_MS as encodeTask() writes it.
local function ms_text(s, min)
  local len = #s
  if len > 1 and string.byte(s, 1) == 48 then return false end -- a leading zero
  if min == 1 and s == '0' then return false end
  return len < 10 or (len == 10 and s <= '2147483647')
end

-- True for a jitter as JSON.stringify writes a number from 0 to 1.
local function jitter_text(s)
  return s == '0' or s == '1' or string.match(s, '^0%.%d+$') ~= nil
end

local function plain_meta(rec)
  local made, name, r, h, a, delay, jitter, max_delay, u, e, gen, tail = string.match(rec, PLAIN)
  if not made then return nil end
  local client
  if tail == '"i":1' then
    client = ''
  else
    client = string.match(tail, '^"c":"([%w_%-]*)"$')
    if not client then return nil end
  end
  if not (ms_text(r, 1) and ms_text(h, 1) and ms_text(a, 1) and ms_text(delay, 0) and
    ms_text(max_delay, 0) and jitter_text(jitter)) then
    return nil
  end
  local keep = client == '' and '0' or r
  return made == '0' and 0 or tonumber(made), h, name,
    '|' .. h .. '|' .. keep .. '|' .. client .. '|' .. gen .. '\n' .. name .. '|' .. e .. '|' .. a ..
    '|0'
end

-- The same from a decoded header.
local function header_meta(h)
  local flags = (h.d and 's' or '') .. (h.k and 'k' or '') .. (h.m and 'm' or '') ..
    ((h.p and h.p ~= 0) and 'q' or '')
  local e = h.e or 0
  return flags .. '|' .. h.h .. '|' .. keep_ms(h) .. '|' .. (h.c or '') .. '|' .. clean_gen(h.g) ..
    '\n' .. h.n .. '|' .. e .. '|' .. h.a .. '|' .. (h.p or 0)
end

-- The parts of an enqueue's meta ("<flags>|<heartrate>|<keep ms>|<client>|<generation>\n<name>|
-- <enqueued>|<attempts>|<priority>") a reservation needs: heartrate (text) and name, the newline
-- before the name found by plain search (as admit.lua finds it).
local function meta_heartrate_name(meta)
  return string.match(meta, '^%a*|(%d+)|'),
    string.match(meta, '^[^|]*', string.find(meta, '\n', 1, true) + 1)
end

-- Records of tasks this call wrote (admit.lua), by id, and their meta (as it came from the
-- enqueue: read_held() in outbox.lua): reserve() takes those without a GET or reading the header.
local written, written_meta

-- Reserves up to `max` ready tasks of `queue` for `worker`, the i-th with token
-- `nonce .. '.' .. i`, taking ids
-- from `take(n)` (up to n ids, or nil when there are none left) and records from `written` or GET.
-- A task a full limit holds back is put aside (lw:<limit>) or delayed (a rate limit), and the next
-- one is taken. One HSET of tokens, one ZADD of leases. Ids whose record is gone or ended are
-- skipped; unreadable records end as BadMessage. Returns the reserved tasks (5 entries each: id,
-- token, attempt as decimal text, record, slots), whether any id was taken, whether `take` ran
-- dry, and the longest lease given (ms from now). A task without Deferred arguments has slots ''
-- (an empty table in the reply would cost Redis a conversion of its own: append() in outbox.lua).
local NO_SLOTS = ''
local function reserve(queue, max, nonce, take, worker)
  local reserved, hset, zadd, lease_ends = {}, {}, {}, {}
  local taken, drained, popped, longest = 0, false, false, 0
  local c = conf(queue)
  local limited, ev = c.limits ~= nil, c.events
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
      if not rec then rec = rcall('GET', record(queue, id)) end
      local state = rec and string.sub(rec, 1, 1)
      local made, heartrate, slots, name
      if meta then
        -- Written by this call, with its meta at hand (admit.lua): no header to read.
        made, slots = 0, NO_SLOTS
        heartrate, name = meta_heartrate_name(meta)
      elseif state == 'E' then
        made, heartrate, name, meta = plain_meta(rec)
        slots = NO_SLOTS
        if not made then
          local ok, m, h = pcall(parse_made, rec)
          if ok and valid_header(h) and m then
            made, heartrate, name = m, h.h, h.n
            meta = header_meta(h)
            if h.d ~= nil then slots = rcall('HGETALL', key(queue, 's:' .. id)) end
          else
            -- A record that cannot be read (written by something other than worq, or cut short)
            -- fails as a task of its own instead of failing this whole call and the tasks it
            -- popped.
            bad_message(queue, id, ok and h or nil, 'the task record cannot be read')
          end
        end
      elseif state and (state == '' or not string.find('PEcfxk', state, 1, true)) then
        bad_message(queue, id, nil, 'the key holds no worq task record')
      end
      if made then
        local token = nonce .. '.' .. digits(taken + 1)
        local verdict, arg = 'ok', false
        if limited then verdict, arg = take_slots(queue, id, name, token) end
        if verdict == 'hold' then
          hold(queue, id, tonumber(string.match(meta, '|(%-?%d+)$')), arg)
        elseif verdict == 'until' then
          make_ready(queue, id, arg, tonumber(string.match(meta, '|(%-?%d+)$')))
        else
          taken = taken + 1
          local n = #hset
          hset[n + 1] = id
          -- The tokens value (read_held() in outbox.lua).
          local attempt = made == 0 and '1' or tostring(made + 1)
          local value = token .. '|' .. meta .. '|' .. now_str() .. '|' .. worker .. '|' .. attempt ..
            (arg and '|1' or '|0')
          hset[n + 2] = value
          -- The lease's end as a string, made once per heartrate in a call (keyed by the
          -- heartrate as it came: text, or a number from a decoded header).
          local ends = lease_ends[heartrate]
          if not ends then
            local lease = lease_ms(num(heartrate))
            if lease > longest then longest = lease end
            ends = string.format('%d', now() + lease)
            lease_ends[heartrate] = ends
          end
          zadd[n + 1] = ends
          zadd[n + 2] = id
          n = #reserved
          reserved[n + 1] = id
          reserved[n + 2] = token
          -- As text: cjson.encode writes a number of a handover with its float format (fpconv).
          reserved[n + 3] = attempt
          reserved[n + 4] = rec
          reserved[n + 5] = slots
          if ev then event(queue, 'started', id, value) end
        end
      end
    end
  end
  if #hset > 0 then
    rcall_list('HSET', key(queue, 'tokens'), hset)
    add_leases(queue, zadd)
  end
  return reserved, popped, drained, longest
end

-- Takes ids in priority order: priorities below 0 (`prio`), then 0 (`wait`), then above (`prio`).
local function from_wait(queue)
  local wait, pkey = key(queue, 'wait'), key(queue, 'prio')
  local prioritized = rcall('EXISTS', pkey) == 1
  if not prioritized then
    return function(n)
      return rcall('RPOP', wait, digits(n))
    end
  end
  return function(n)
    local ids = rcall('ZRANGE', pkey, '-inf', '(0', 'BYSCORE', 'LIMIT', '0', digits(n))
    if #ids > 0 then
      rcall_list('ZREM', pkey, ids)
      return ids
    end
    ids = rcall('RPOP', wait, digits(n))
    if ids then return ids end
    local popped = rcall('ZPOPMIN', pkey, digits(n))
    if #popped == 0 then return nil end
    ids = {}
    for i = 1, #popped - 1, 2 do ids[#ids + 1] = popped[i] end
    return ids
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

-- A handover message as text (`framed` parks): \30, then id, token, attempt, record and slots of
-- each task, every value preceded by \31; slots '' when none, else JSON of the flat list. What
-- worq writes holds no \31 (records are JSON text after their header's newline), but a record or
-- id written by something else may: then nil, and the caller sends JSON. Unlike cjson.encode, the
-- records are copied as they are, not escaped: a byte of payload costs one pass less here, and
-- none in the worker's JSON.parse of the message (docs/redis.md, "Handovers as text").
local text_parts = { '\30' }
local function handover_text(got)
  local parts, n = text_parts, 1
  for j = 1, #got - 4, 5 do
    local slots, id, rec = got[j + 4], got[j], got[j + 3]
    -- (A token holds its worker's id: a worker id with \31 could only spoil its own handovers.)
    if string.find(rec, '\31', 1, true) or string.find(id, '\31', 1, true) then return nil end
    parts[n + 1], parts[n + 2], parts[n + 3], parts[n + 4] = id, got[j + 1], got[j + 2], rec
    parts[n + 5] = #slots == 0 and '' or cjson.encode(slots)
    n = n + 5
  end
  local text = table.concat(parts, '\31', 1, n)
  -- Kept for the next message (its array part already grown) unless it grew long.
  if n > 1000 then text_parts = { '\30' } end
  return text
end

-- The ids and tokens of a handover message (id, token, id, token, …), either form, appended to
-- `into`; its records are not copied out. With `rows`, a message as text gives every task's five
-- values instead (id, token, attempt, record, slots), laid out as exchange.lua's reserved (which
-- decodes a JSON message into its reserved itself).
local function handover_ids(message, into, rows)
  if string.byte(message, 1) == 30 then
    local at, k = 2, 0
    while true do
      local from = at + 1
      at = string.find(message, '\31', from, true)
      local piece = k % 5
      if piece < 2 or rows then
        local value = string.sub(message, from, (at or 0) - 1)
        if piece == 4 then value = value == '' and NO_SLOTS or cjson.decode(value) end
        into[#into + 1] = value
      end
      if not at then return into end
      k = k + 1
    end
  end
  local ok, got = pcall(cjson.decode, message)
  if ok and type(got) == 'table' then
    for j = 1, #got - 4, 5 do
      into[#into + 1] = tostring(got[j])
      into[#into + 1] = tostring(got[j + 1])
    end
  end
  return into
end

-- Hands ready tasks of `queue` to parked workers: idle workers that asked, in their last exchange,
-- to get work as it arrives (hash `parked`: worker id -> "<slots>|<until epoch ms>|<nonce>", after
-- a "t" from a worker that reads handovers as text; `parks` its HGETALL). Each gets up to its slots,
-- reserved as exchange.lua reserves, pushed as one message onto its handover list `h:<worker>`,
-- which it BLPOPs: the wake and the reservation in one reply. The message is text
-- (handover_text()) for a worker whose park says so, else a JSON array (workers of earlier
-- versions). `take` gives the ready ids in order; stops when it runs dry.
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
      local framed, slots, till, nonce = string.match(parks[i + 1], '^(t?)(%d+)|(%d+)|(.+)$')
      if not (slots and tonumber(till) > now()) then
        rcall('HDEL', pkey, worker)
      else
        local got, _, drained, longest = reserve(queue, num(slots), nonce, take, worker)
        local left = num(slots) - #got / 5
        local base, before = string.match(nonce, '^(.-p)(%d*)$')
        if left > 0 and base then
          local next_nonce = base .. digits((tonumber(before) or 0) + #got / 5)
          rcall('HSET', pkey, worker, framed .. digits(left) .. '|' .. till .. '|' .. next_nonce)
        else
          rcall('HDEL', pkey, worker)
        end
        if #got > 0 then
          local list = key(queue, 'h:' .. worker)
          -- At the tail: the worker pops the oldest first, and its tasks start in enqueue order.
          rcall('RPUSH', list, framed ~= '' and handover_text(got) or cjson.encode(got))
          -- Unpopped (the worker died parked), the reservations lapse with their leases; the
          -- sweep that finds them puts them back uncounted and deletes the list, which otherwise
          -- goes a minute after them.
          rcall('PEXPIRE', list, digits(longest + 60000))
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
  for _, message in ipairs(rcall('LRANGE', list, 0, -1)) do handover_ids(message, found) end
  rcall('DEL', list)
  return found
end

-- Puts the ids make_ready() collected in line. Where workers are parked they are handed over:
-- straight from the collected ids when nothing else waits (no trip through the wait list), else
-- from the lines after the push. Wakes a blocked worker where the lines were empty before and
-- ready work is left. A paused queue parks nobody and wakes nobody (resume does).
local function flush_ready()
  if #ready_order == 0 then return end
  for _, queue in ipairs(ready_order) do
    local list, plist = ready[queue], ready_prio[queue]
    local wait = key(queue, 'wait')
    local paused = conf(queue).paused
    if #plist > 0 then
      local n = rcall('INCRBY', key(queue, 'pseq'), digits(#plist / 2))
      local zadd = {}
      for i = 1, #plist - 1, 2 do
        zadd[#zadd + 1] = digits(plist[i + 1] * PRIO_UNIT + n - (#plist - i - 1) / 2)
        zadd[#zadd + 1] = plist[i]
      end
      rcall_list('ZADD', key(queue, 'prio'), zadd)
    end
    local parks = paused and {} or rcall('HGETALL', key(queue, 'parked'))
    local from, empty = 1, nil
    if #parks > 0 and #plist == 0 then
      -- (Redis deletes a list or a sorted set that it empties: neither key exists when both lines
      -- are empty, and one EXISTS of both tells.)
      empty = rcall('EXISTS', wait, key(queue, 'prio')) == 0
      if empty then
        local take, next_index = from_list(list)
        hand_over(queue, parks, take)
        from = next_index()
        parks = {}
      end
    end
    local left = rcall_list('LPUSH', wait, list, nil, from) or 0
    local pushed = #list - from + 1 + #plist / 2
    if #parks > 0 then
      hand_over(queue, parks, from_wait(queue))
      left = rcall('LLEN', wait) + rcall('ZCARD', key(queue, 'prio'))
    elseif #plist > 0 then
      if left == 0 then left = rcall('LLEN', wait) end
      left = left + rcall('ZCARD', key(queue, 'prio'))
    end
    -- Wake a blocked worker where the lines were empty before this call's work arrived.
    if not paused and left > 0 and (empty or left == pushed) then wake(queue) end
  end
  ready, ready_prio, ready_order = {}, {}, {}
end

-- Writes everything a call collected: ready work, outcomes to publish, events and metrics, and
-- listing clean-up entries.
local function flush_all()
  flush_ready()
  flush_outbox()
  flush_listing()
  flush_observed()
end

-- Starts a call (the first line of every operation): its arguments and a fresh state.
local function begin(args)
  begin_common(args)
  begin_observe()
  begin_lines()
  begin_listing()
  -- (written_meta holds an id only with written: admit.lua.)
  if not written or next(written) then written, written_meta = {}, {} end
  CALLER = nil
end
