--[[ store.lua: how tasks end — the kept outcome with its details, its delivery, limit slots and
  the cache, and the listing's clean-up bucket (listing.lua) — and the cascade down Deferred
  arguments and the cache's followers; cancels; retries; unreadable records.
]]

-- The plain JSON of a completed outcome's value (plainOutcomeJson() of rules.ts), or nil.
local function plain_json(out)
  if string.sub(out, 1, 9) ~= 'c{"json":' or string.sub(out, -1) ~= '}' then return nil end
  local ok, d = pcall(cjson.decode, string.sub(out, 2))
  if not ok or type(d) ~= 'table' or d.meta ~= nil then return nil end
  return string.sub(out, 10, -2)
end

-- `s` with every `find` (plain text) replaced by `repl`.
local function replace_all(s, find, repl)
  local out, from = {}, 1
  while true do
    local i, j = string.find(s, find, from, true)
    if not i then break end
    out[#out + 1] = string.sub(s, from, i - 1)
    out[#out + 1] = repl
    from = j + 1
  end
  out[#out + 1] = string.sub(s, from)
  return table.concat(out)
end

-- The cache key of a task with `cache` whose arguments are all there (readyCacheKey() of
-- rules.ts): the key the broker gave, or the template filled with the arguments' values, or its
-- payload and argument outcomes.
local function ready_cache_key(queue, id, rec, h)
  if h.k ~= '' then return h.k end
  local nl = string.find(rec, '\n', string.find(rec, ':', 2, true) + 1, true)
  local slots = {}
  if h.d then
    local flat = rcall('HGETALL', key(queue, 's:' .. id))
    for i = 1, #flat - 1, 2 do
      if flat[i] ~= 'm' then slots[tonumber(flat[i]) + 1] = flat[i + 1] end
    end
  end
  if type(h.kp) == 'string' and h.kp ~= '' then
    local text = h.kp
    for i, out in ipairs(slots) do
      local json = plain_json(out)
      if not json then
        text = nil
        break
      end
      text = replace_all(text, '"\\u0001worq:' .. (i - 1) .. '\\u0001"', json)
    end
    if text then return redis.sha1hex(h.n .. '\n' .. text) end
  end
  local parts = { h.n, string.sub(rec, nl + 1) }
  for _, out in ipairs(slots) do parts[#parts + 1] = out end
  return redis.sha1hex(table.concat(parts, '\n'))
end

local on_ready -- A task whose arguments are all there (defined below, used by the cascade).

--[[ Ends task `id` of `queue` with `outcome`. `x` says what the caller knows of it:
  h       its parsed header, or nil when it ended processing (then `held` is its tokens value)
  held    its tokens value (read_held()), when it was processing
  rec     its live record, when already read
  made    attempts made (without `held`)
  deps    its dependents text (false: none; nil: read and delete here)
  tag     the tag of the token whose finish (or cancelled run) ended it
  cached  the outcome came from the result cache
  listed  false when it cannot be listed (the queue's listing was off when it was enqueued);
          nil: it may be
  progress its latest progress (serialized), when known
  It counts no wait or run time: the call that ended the run does (exchange.lua, with its worker's
  times; the sweep and a cancel of an ignoreResult task, count_run() of observe.lua), or, for a run
  a cancel ended, its worker's refused finish (exchange.lua).
  Returns the dependents text (false when none), for the cascade. ]]
local function end_task(queue, id, outcome, x)
  local h, held = x.h, x.held
  local kind = string.sub(outcome, 1, 1)
  local name, enq, worker, attempt, head, keep, client, gen, flags
  if held then
    name, enq, worker, attempt, head = held.name, held.enq, held.worker, held.attempt, held.head
    keep, client, gen, flags = held.keep, held.client, held.gen, held.flags
  else
    name, enq, worker, attempt = h.n, h.e or 0, '', x.made or 0
    head = name .. '|' .. enq .. '|' .. h.a .. '|' .. (h.p or 0) .. '||' .. '|' .. attempt .. '|0'
    keep, client, gen = tostring(keep_ms(h)), h.c or '', clean_gen(h.g)
    flags = (h.d and 's' or '') .. (h.k and 'k' or '') .. (h.m and 'm' or '')
  end
  local listed = x.listed ~= false and conf(queue).listing
  -- What only the record holds: the call (kept when the task did not complete), the metadata,
  -- the cache key.
  local rec, meta, ckey, cttl = x.rec, nil, nil, nil
  local needs = has(flags, 'm') or has(flags, 'k')
  if rec == nil and (kind ~= 'c' or needs) then
    rec = rcall('GET', record(queue, id))
    if rec and not is_live(rec) then rec = nil end
  end
  local call
  if rec and (kind ~= 'c' or needs) then
    local colon = string.find(rec, ':', 2, true)
    local nl = string.find(rec, '\n', colon + 1, true)
    local hj = string.sub(rec, colon + 1, nl - 1)
    if kind ~= 'c' then call = 'H' .. hj .. '\nA' .. string.sub(rec, nl + 1) end
    if needs then
      local rh = h or cjson.decode(hj)
      if type(rh.m) == 'string' then meta = rh.m end
      if type(rh.k) == 'string' then ckey, cttl = ready_cache_key(queue, id, rec, rh), rh.kt end
    end
  end
  -- The second of its listing entry's list (listing.lua), when it was listed.
  local sec = listed and second_of(type(enq) == 'string' and enq or digits(enq))
  if keep ~= '0' then
    -- The details line (common.lua): the tokens value's head (name, enqueued, attempts, priority,
    -- started and worker and attempt of the last run, limit slots), flags, finished.
    local v = outcome .. '\n' .. (x.tag or '') .. '\n' .. gen .. '\n' .. head .. '|' ..
      (x.cached and 'C' or '') .. '|' .. now_str()
    if x.progress then v = v .. '\nP' .. x.progress end
    if meta then v = v .. '\nM' .. meta end
    if call then v = v .. '\n' .. call end
    rcall('SET', record(queue, id), v, 'PX', keep)
    if client ~= '' then
      deliver(client, queue, id, x.cached and ('C' .. string.sub(outcome, 2)) or outcome)
    end
    if sec then lc_add(queue, sec, now() + num(keep)) end
    if listed and kind ~= 'c' then bad_add(queue, id, enq) end
  else
    rcall('DEL', record(queue, id))
    if sec then lc_gone(queue, sec) end
  end
  if has(flags, 's') then rcall('DEL', key(queue, 's:' .. id)) end
  if held and held.holds then free_slots(queue, id, name) end
  if ckey then
    local fly = key(queue, 'cfly')
    if rcall('HGET', fly, ckey) == id then rcall('HDEL', fly, ckey) end
    if kind == 'c' and not x.cached then cache_put(queue, ckey, outcome, tonumber(cttl) or 0) end
  end
  local c = conf(queue)
  if c.events then
    local type = kind == 'c' and (x.cached and 'cached' or 'completed') or
      (kind == 'f' and 'failed' or (kind == 'x' and 'expired' or 'cancelled'))
    event(queue, type, id, head, kind ~= 'c' and { e = outcome_error(outcome) })
  end
  if c.metrics then count(queue, kind, 1) end
  local deps = x.deps
  if deps == nil then
    local dkey = key(queue, 'dependents')
    deps = rcall('HGET', dkey, id)
    if deps then
      rcall('HDEL', dkey, id)
      deps = all_dependents(queue, id, deps)
    end
  end
  return deps
end

-- A tokens value's fields end_plain() needs: token, flags, keep, client, generation, where the
-- details head starts.
local PLAIN_HELD = '^([^|]*)|(%a*)|%d+|(%d+)|([^|]*)|([^|\n]*)\n()'

-- The common end, done with less reading than end_task(): a task that completed its run under
-- `token` (tokens value `v`) and keeps its outcome, with no argument slots, cache, metadata,
-- limit slots or dependents. Returns false, having changed nothing, for any other.
local function end_plain(queue, id, outcome, token, v, progress)
  if string.byte(outcome, 1) ~= 99 or string.byte(v, -1) ~= 48 then return false end -- 'c', '0'
  local tok, flags, keep, client, gen, at = string.match(v, PLAIN_HELD)
  if tok ~= token or (flags ~= '' and flags ~= 'q') or keep == '0' then return false end
  local head = string.sub(v, at)
  local out = outcome .. '\n' .. token_tag(token) .. '\n' .. gen .. '\n' .. head .. '||' .. now_str()
  if progress then out = out .. '\nP' .. progress end
  rcall('SET', record(queue, id), out, 'PX', keep)
  if client ~= '' then deliver(client, queue, id, outcome) end
  local c = conf(queue)
  -- Its listing entry goes with its list's checks (listing.lua), asked for when the list was made.
  if c.events then event(queue, 'completed', id, head, false) end
  -- Its run time reaches the metrics with the worker's report (exchange.lua).
  if c.metrics then count(queue, 'c', 1) end
  return true
end

-- Puts `out` in slot `slot` of pending dependent `did` of `dq`, once (HSETNX); when that was the
-- last slot missing, the dependent is ready (on_ready()), its record `rec` and header `h` read
-- here when not given.
local function fill_slot(dq, did, slot, out, rec, h)
  local skey = key(dq, 's:' .. did)
  if rcall('HSETNX', skey, slot, out) == 0 or rcall('HINCRBY', skey, 'm', -1) ~= 0 then
    return nil
  end
  local dkey = record(dq, did)
  if not rec then
    rec = rcall('GET', dkey)
    local _, _, header = parse(rec)
    h = header
  end
  rcall('SREM', key(dq, 'pending'), did)
  rcall('SETRANGE', dkey, 0, 'E')
  return on_ready(dq, did, 'E' .. string.sub(rec, 2), h)
end

-- Fills slot `slot` of dependent `did` of `dq` (generation `dgen`) with an argument's outcome
-- `out` (`failing`: not a completion), once: a pending dependent of that generation whose slot is
-- still empty (HSETNX, so a hand-over delivered twice counts once). A follower of the cache's
-- single flight (slot 'c') takes the leader's value or runs itself. Returns, for a dependent that
-- ended here, its dependents text and its outcome (for the cascade).
local FILL_HEAD = 1024
local function fill(dq, did, slot, dgen, out, failing)
  local dkey = record(dq, did)
  if slot ~= 'c' and not failing then
    -- The common fill, a value into its slot, checks the state and the generation on the record's
    -- first bytes. A task with thousands of Deferred arguments has a header as long (their list),
    -- and reading and decoding it at every fill made a fan-in quadratic (8 500 arguments: 46 s).
    -- The generation is the header's first "g" (encodeTask() writes it before the list); where it
    -- is not in those bytes, the record is read whole below.
    local head = rcall('GETRANGE', dkey, 0, FILL_HEAD - 1)
    if string.byte(head, 1) ~= 80 then return nil end -- not 'P' (or gone)
    local nl = string.find(head, '\n', 1, true) or #head + 1
    local at = string.find(head, '"g":"', 1, true)
    local gen = at and at < nl and string.match(head, '^([^"]*)"', at + 5)
    if gen then
      if gen ~= dgen then return nil end
      return fill_slot(dq, did, slot, out)
    end
  end
  local rec = rcall('GET', dkey)
  if not rec or string.sub(rec, 1, 1) ~= 'P' then return nil end
  local _, made, h = parse(rec)
  if h.g ~= dgen then return nil end
  if slot == 'c' then
    rcall('SREM', key(dq, 'pending'), did)
    if failing then
      rcall('SETRANGE', dkey, 0, 'E')
      make_ready(dq, did, h.u, h.p)
      return nil
    end
    return end_task(dq, did, out, { h = h, rec = rec, made = made, cached = true }), out
  end
  if failing and h.o ~= 'p' then
    rcall('SREM', key(dq, 'pending'), did)
    return end_task(dq, did, out, { h = h, rec = rec, made = made }), out
  end
  return fill_slot(dq, did, slot, out, rec, h)
end

local DEP_LINE = '([^\t]*)\t([^\t]*)\t([%dc]+)\t([^\n]*)\n'

-- Goes down the graph from task `id` of `queue`, which ended with `outcome` and had dependents
-- `deps`: fills or fails them (and ends or frees the cache's followers). Depth first, in the
-- order the dependents were registered, as memory:// does: a dependent that fails with the task
-- ends, with everything under it, before the task's next dependent is filled, so tasks a cascade
-- makes ready join the line in the same order on both backends, and a dependent that waits on the
-- task in two slots ends once. Iterative (a stack of the tasks whose dependents are being gone
-- through), so a deep graph does not deepen Lua's stack. A call that keeps to its queue's slot
-- (SPLIT) fills dependents on other queues in a second step: it owes them a hand-over (owe()).
local function cascade(queue, id, outcome, deps)
  local stack = { { q = queue, id = id, out = outcome, failing = string.sub(outcome, 1, 1) ~= 'c',
    lines = string.gmatch(deps, DEP_LINE) } }
  while #stack > 0 do
    local top = stack[#stack]
    local dq, did, slot, dgen = top.lines()
    if not dq then
      stack[#stack] = nil
    elseif SPLIT and dq ~= top.q then
      owe('D\t' .. top.id .. '\t' .. dq .. '\t' .. did .. '\t' .. slot, dgen .. '\t' .. top.out)
    else
      local more, more_out = fill(dq, did, slot, dgen, top.out, top.failing)
      if more then
        stack[#stack + 1] = { q = dq, id = did, out = more_out,
          failing = string.sub(more_out, 1, 1) ~= 'c', lines = string.gmatch(more, DEP_LINE) }
      end
    end
  end
end

-- Ends a task for good (end_task()) and goes down the graph from it (cascade()).
local function settle(queue, id, outcome, x)
  local deps = end_task(queue, id, outcome, x)
  if deps then cascade(queue, id, outcome, deps) end
end

--[[ A task whose arguments are all there (its record `rec` is live, state E): a task with `cache`
  ends with a kept result (cached), or waits for a live identical call (a follower: state P,
  registered as that task's dependent with slot 'c'), or leads its key; then it joins its line.
  Returns, for a task that ended here, its dependents text (for the cascade) and its outcome. ]]
on_ready = function(queue, id, rec, h)
  if h.k ~= nil then
    local ckey = ready_cache_key(queue, id, rec, h)
    local hit = cache_get(queue, ckey)
    if hit then
      return end_task(queue, id, hit, { h = h, rec = rec, made = 0, cached = true }) or nil, hit
    end
    local fly = key(queue, 'cfly')
    local leader = rcall('HGET', fly, ckey)
    local lrec = leader and leader ~= id and rcall('GET', record(queue, leader))
    if lrec and is_live(lrec) then
      add_dependent(queue, leader, queue .. '\t' .. id .. '\tc\t' .. h.g .. '\n')
      rcall('SETRANGE', record(queue, id), 0, 'P')
      rcall('SADD', key(queue, 'pending'), id)
      return nil
    end
    rcall('HSET', fly, ckey, id)
  end
  make_ready(queue, id, h.u, h.p)
  return nil
end

-- Cancels a task that has not ended: a pending or waiting one (`unlinked`: the caller already took
-- it out of its line), or a processing one, whose worker is told. True when it was cancelled.
local function cancel_one(queue, id, unlinked)
  local tkey = record(queue, id)
  local rec = rcall('GET', tkey)
  if not rec or not is_live(rec) then return false end
  local state, made, h = parse(rec)
  local x = { h = h, rec = rec, made = made }
  if state == 'P' then
    if not unlinked then rcall('SREM', key(queue, 'pending'), id) end
  else
    local tokens = key(queue, 'tokens')
    local v = rcall('HGET', tokens, id)
    if v then
      local held = read_held(v)
      x.held, x.tag = held, held and token_tag(held.token)
      -- Its worker sends the run's finish all the same (refused, it counts the run's times with
      -- it, exchange.lua), whether it heard the cancel while the run went on or after it ended;
      -- unless no outcome is kept (ignoreResult): that finish finds nothing to tell it from a lost
      -- lease's, so the run counts here, until now.
      if held and held.keep == '0' then count_run(queue, h, held) end
      x.progress = rcall('HGET', tokens, 'p:' .. id) or nil
      rcall('HDEL', tokens, id, 'p:' .. id)
      drop_leases(queue, { id })
      drop_empty_leases(queue)
      tell(queue, 'c' .. id)
    elseif not unlinked and not unline(queue, id, h.p) then
      unhold(queue, id)
    end
  end
  settle(queue, id, cancelled_outcome(h.n, queue, id), x)
  return true
end

-- Ends an unreadable task record as a failed outcome (remote BadMessage) kept for an hour; no client
-- can be told (its id is in the unreadable header), but status() and waiters that poll see it.
local function bad_message(queue, id, h, why)
  local name = (type(h) == 'table' and type(h.n) == 'string') and h.n or '?'
  local failure = { json = { taskName = name, queue = queue, taskId = id, attempts = 1,
    remote = { name = 'BadMessage', code = 'ERR_WORQ_BAD_MESSAGE', message = why } } }
  rcall('SET', record(queue, id), 'f' .. cjson.encode(failure) .. '\n\n\n' .. name ..
    '|0|1|0|||0|0||', 'PX', 3600000)
end

-- Rewrites a record for another attempt: attempts made = `attempt`, runAt = `run_at`.
local function requeue(queue, id, attempt, run_at, tag)
  local tkey = record(queue, id)
  local rec = rcall('GET', tkey)
  local _, _, h, _, nl = parse(rec)
  h.u = run_at
  h.f = tag
  rcall('SET', tkey, 'E' .. attempt .. ':' .. cjson.encode(h) .. string.sub(rec, nl))
  make_ready(queue, id, run_at, h.p)
  return h
end
