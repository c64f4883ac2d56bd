--[[ admit.lua: storing one new task (enqueue.lua takes a batch of them, schedule.lua one per due
  time). An enqueue entry is: id, runAt (epoch ms, 0 = now), the record ("E0:<header JSON>\n<payload>",
  or "P0:…" when the task has Deferred arguments), and its meta (read_held() in outbox.lua).
  Everything else (generation, client, resultTimeout, onError, the arguments) is read from the
  header, and only on the paths that need it: Deferred arguments, a priority, the cache, an id in
  use.
]]
local GONE = 'the argument task and its result are gone (its resultTimeout passed)'

-- 'dup', 'ok' (same generation: this call, resent after its reply was lost) or nil (free) for
-- the record holding the id. A live record carries its generation in its header; an ended one
-- after its outcome: a resent call finds its task even when it has run and ended since.
local function held(rec, body)
  if not rec then return nil end
  local gen = string.match(body, '"g":"([^"]*)"')
  if not is_live(rec) then
    if gen and gen ~= '' and stored_gen(rec) == gen then return 'ok' end
    return nil
  end
  if gen and string.find(rec, '"g":"' .. gen .. '"', 1, true) then return 'ok' end
  return 'dup'
end

-- A task with Deferred arguments: each finished argument's outcome goes into its slot (a failure
-- with onError 'fail' ends the task at once with that outcome; an unknown argument counts as
-- expired); for each live argument the task registers as a dependent and stays pending.
local function admit_pending(queue, id, body, listed)
  local _, _, header = parse(body)
  local pass = header.o == 'p'
  local slots, missing, failed = {}, 0, nil
  for slot, dep in ipairs(header.d) do
    local dq, did = dep[1], dep[2]
    local elsewhere = SPLIT and dq ~= queue
    local arg = not elsewhere and rcall('GET', record(dq, did))
    if elsewhere then
      -- On another slot: link.lua registers the task there in a second step (owe()).
      owe('L\t' .. id .. '\t' .. (slot - 1), dq .. '\t' .. did .. '\t' .. header.g)
      missing = missing + 1
    elseif arg and is_live(arg) then
      add_dependent(dq, did, queue .. '\t' .. id .. '\t' .. (slot - 1) .. '\t' .. header.g .. '\n')
      missing = missing + 1
    else
      local out = arg and stored_outcome(arg) or expired_outcome('unknown', dq, did, GONE)
      if string.sub(out, 1, 1) ~= 'c' and not pass then
        failed = out
        break
      end
      slots[#slots + 1] = slot - 1
      slots[#slots + 1] = out
    end
  end
  if failed then
    header.d = nil -- no slots were written
    settle(queue, id, failed, { h = header, rec = body, made = 0, deps = false, listed = listed })
    return
  end
  local skey = key(queue, 's:' .. id)
  if #slots < PIECE then
    rcall('HSET', skey, 'm', missing, unpack(slots))
  else
    rcall('HSET', skey, 'm', missing)
    rcall_list('HSET', skey, slots)
  end
  local tkey = record(queue, id)
  if missing > 0 then
    rcall('SET', tkey, body)
    rcall('SADD', key(queue, 'pending'), id)
  else
    local rec = 'E' .. string.sub(body, 2)
    rcall('SET', tkey, rec)
    on_ready(queue, id, rec, header)
  end
end

-- Stores one task of a batch. Returns 1 stored (or already stored by this very call, resent), 0
-- duplicate.
local function admit(queue, id, run_at, body, meta)
  local tkey = record(queue, id)
  local fresh, old = body, nil
  if rcall('SET', tkey, body, 'NX') then
    fresh = nil
  else
    old = rcall('GET', tkey)
    local h = held(old, body)
    if h == 'dup' then return 0 end
    if h == 'ok' then return 1 end
  end
  -- New (or a finished id used again: its kept outcome is replaced, and its listing entry goes).
  if old then unlist(queue, id, old) end
  -- Flags, name and createdAt (meta: read_held() in outbox.lua). The newline found by plain
  -- search: a pattern stepping through the line to it cost about 850 instructions more an enqueue.
  local flags = string.match(meta, '^%a*')
  local name, enq = string.match(meta, '^([^|]*)|(%d*)', string.find(meta, '\n', 1, true) + 1)
  local c = conf(queue)
  if c.listing then
    local sec = second_of(enq)
    if sec then index_add(queue, id, sec, meta) end
  end
  if c.events then event(queue, 'enqueued', id, name) end
  if string.byte(body, 1) == 80 then -- 'P': has Deferred arguments
    admit_pending(queue, id, body, c.listing)
    return 1
  end
  if fresh then rcall('SET', tkey, body) end
  written[id], written_meta[id] = body, meta
  if flags == '' then
    make_ready(queue, id, run_at, 0)
  elseif has(flags, 'k') then
    local _, _, h = parse(body)
    on_ready(queue, id, body, h)
  else
    make_ready(queue, id, run_at, tonumber(string.match(meta, '|(%-?%d+)$')))
  end
  return 1
end
