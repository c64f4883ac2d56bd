--[[ listing.lua: the listing index and its clean-up, written for every task enqueued or ended
  while the queue's `listing` setting is on (list.lua reads it). `ls:<second>` (list) holds the ids
  of the tasks created in that second (their `createdAt`, the producer's clock, in epoch seconds),
  in the order they reached Redis; `lss` (sorted set, each second scored by itself) the seconds that
  have a list, so that `list` pages newest first by second, then from the end of each list. `bad`
  (sorted set, scored createdAt × 1000 plus a counter) those of them that failed, expired or were
  cancelled, so that listing those statuses need not read every task.

  Clean-up: a list's checks wait in clean-up buckets (`lc:<second>`, lists of the seconds of lists
  to check, found through `lcs`, a sorted set of those seconds). A new list asks for its first
  check when its first task's outcome would have expired had the task ended within its second
  (unless that task keeps no outcome: its end asks); a task that ends another way than completing
  its run (it failed, expired, was cancelled or had dependents: end_task() in store.lua) asks for
  one when its outcome expires, and one that keeps no outcome (ignoreResult) at once. lc_step()
  runs the checks that came due: ids whose records are gone leave the list and `bad`; kept
  outcomes bring the check back when the first expires, tasks still live when the list is twice
  as old. A task id enqueued again after its task ended leaves its old list then (unlist()).
  Appending an id to a list costs Redis a tenth of inserting it into a sorted set scored in µs, the
  index this replaced (schema of the keys before 2026-12-06: `idx`, `gc:<second>`, `gcs`), which
  the sweep still moves over (legacy_step()).
]]

-- Listing entries collected during the call: new ones (queue -> second -> ids, with the seconds in
-- order), clean-up ones (queue -> bucket second -> entries, and a set of them), and lists to look
-- at before the call ends (queue -> second -> true).
local idx_buf, lc_buf, lc_order, lc_soon

-- The epoch second (text) of a time in epoch ms given as text, or nil when it has none.
local function second_of(ms)
  if ms and #ms > 3 then return string.sub(ms, 1, -4) end
  return nil
end

-- Lists task `id`, created in second `sec` (text), written by flush_listing(). `meta` (its enqueue
-- entry's) gives the first task of each second in a call its outcome's life (keep ms), for the
-- first check of a list it makes.
local function index_add(queue, id, sec, meta)
  local q = idx_buf[queue]
  if not q then
    q = { order = {}, keep = {} }
    idx_buf[queue] = q
  end
  local list = q[sec]
  if not list then
    list = {}
    q[sec] = list
    q.order[#q.order + 1] = sec
    q.keep[sec] = string.match(meta, '^%a*|%d*|(%d+)|') or '0'
  end
  list[#list + 1] = id
end

-- The clean-up bucket of an outcome that expires at `expires_ms`: the second after the one it
-- expires in. Redis keeps a key up to and including the millisecond it expires at, so a bucket of
-- that very second could come due while the record is still there.
local function gc_second(expires_ms)
  return math.floor(expires_ms / 1000) + 1
end

-- Asks for a check of list `entry` (its second, or `<second>:<place>` to go on from a place) once
-- `expires_ms` has passed; each entry once per bucket and call.
local function lc_add(queue, entry, expires_ms)
  local sec = gc_second(expires_ms)
  local q = lc_buf[queue]
  if not q then
    q = {}
    lc_buf[queue] = q
    lc_order[#lc_order + 1] = queue
  end
  local b = q[sec]
  if not b then
    b = { list = {}, seen = {} }
    q[sec] = b
  end
  if not b.seen[entry] then
    b.seen[entry] = true
    b.list[#b.list + 1] = entry
  end
end

-- List `sec` lost a task whose record went as it ended (ignoreResult): a small list is looked at
-- before the call ends and goes at once when nothing in it is left (a quiet queue keeps no key
-- for it); a longer one, or one with tasks left, is checked in the next second.
local function lc_gone(queue, sec)
  local q = lc_soon[queue]
  if not q then
    q = {}
    lc_soon[queue] = q
  end
  q[sec] = true
end

-- Writes a task that failed, expired or was cancelled into `bad`, by its createdAt (`enq`, epoch
-- ms) and a counter that keeps the scores of one millisecond apart.
local bad_seq = 0
local function bad_add(queue, id, enq)
  bad_seq = (bad_seq + 1) % 1000
  rcall('ZADD', key(queue, 'bad'), digits((tonumber(enq) or 0) * 1000 + bad_seq), id)
end

-- A record's createdAt (epoch ms, text): its header's `e` while it lives, the second field of its
-- details line once it ended.
local function created_of(rec)
  if is_live(rec) then return string.match(rec, '^[^\n]-,"e":(%d+)') end
  return string.match(rec, '^[^\n]*\n[^\n]*\n[^\n]*\n[^|\n]*|(%d+)')
end

-- Task `id`, whose ended record `old` a new task of the same id replaces, leaves the list and the
-- `bad` set its earlier run was in (an id enqueued again is rare: LREM walks the list).
local function unlist(queue, id, old)
  local sec = second_of(created_of(old))
  if sec then rcall('LREM', key(queue, 'ls:' .. sec), '1', id) end
  rcall('ZREM', key(queue, 'bad'), id)
end

-- How many of `ids` still have a record, and their record keys.
local function still_there(queue, ids)
  local keys = {}
  for i, id in ipairs(ids) do keys[i] = record(queue, id) end
  return rcall('EXISTS', unpack(keys)), keys
end

-- Removes `gone` (ids that left a list) from `bad`, when the queue has one.
local function unbad(queue, gone)
  local bad = key(queue, 'bad')
  if #gone > 0 and rcall('EXISTS', bad) == 1 then rcall_list('ZREM', bad, gone) end
end

-- A bucket is in `lcs` for as long as it exists, and a list's second is in `lss` for as long as
-- the list exists: each is registered by the push that creates it.
local function flush_listing()
  if next(idx_buf) then
    for queue, q in pairs(idx_buf) do
      for _, sec in ipairs(q.order) do
        local list = q[sec]
        if rcall_list('RPUSH', key(queue, 'ls:' .. sec), list) == #list then
          -- A new list: registered, and its first check asked for once its first task's outcome
          -- would have expired had it ended within its second. An ignoreResult task (keep 0)
          -- asks for a check of its list as it ends (lc_gone()).
          rcall('ZADD', key(queue, 'lss'), sec, sec)
          local keep = q.keep[sec]
          if keep ~= '0' then lc_add(queue, sec, (tonumber(sec) + 1) * 1000 + num(keep)) end
        end
      end
    end
    idx_buf = {}
  end
  if next(lc_soon) then
    for queue, q in pairs(lc_soon) do
      for sec in pairs(q) do
        local lkey = key(queue, 'ls:' .. sec)
        local n = rcall('LLEN', lkey)
        local ids = n > 0 and n <= 100 and rcall('LRANGE', lkey, '0', '-1')
        if n == 0 or (ids and still_there(queue, ids) == 0) then
          if ids then
            rcall('DEL', lkey)
            unbad(queue, ids)
          end
          rcall('ZREM', key(queue, 'lss'), sec)
        else
          lc_add(queue, sec, now())
        end
      end
    end
    lc_soon = {}
  end
  if #lc_order == 0 then return end
  for _, queue in ipairs(lc_order) do
    local secs = {}
    for sec, b in pairs(lc_buf[queue]) do
      local s = digits(sec)
      if rcall_list('RPUSH', key(queue, 'lc:' .. s), b.list) == #b.list then
        secs[#secs + 1] = s
        secs[#secs + 1] = s
      end
    end
    if #secs > 0 then rcall_list('ZADD', key(queue, 'lcs'), secs) end
  end
  lc_buf, lc_order = {}, {}
end

-- Checks list `sec` (text) of `queue` from place `from`, reading at most `budget` entries: ids
-- whose records are gone leave it (the places before `from`, read by an earlier check, stay as
-- they are). Returns the budget left. A check that stops before the end goes on in the next second
-- from where it stopped; one that found kept outcomes comes back once the first of them expires;
-- one that found tasks still live comes back when the list is twice as old (a task that ends
-- another way than completing its run asks for a check of its own, store.lua).
local function check_list(queue, sec, from, budget)
  local lkey = key(queue, 'ls:' .. sec)
  local kept, gone, later, live, at, done = {}, {}, nil, false, from, false
  while budget > 0 do
    local want = math.min(100, budget)
    local ids = rcall('LRANGE', lkey, digits(at), digits(at + want - 1))
    budget = budget - math.max(#ids, 1)
    if #ids > 0 then
      local there, keys = still_there(queue, ids)
      if there == 0 then
        for _, id in ipairs(ids) do gone[#gone + 1] = id end
      else
        for i, id in ipairs(ids) do
          local ttl = rcall('PTTL', keys[i])
          if ttl == -2 then
            gone[#gone + 1] = id
          else
            kept[#kept + 1] = id
            if ttl < 0 then
              live = true
            elseif not later or ttl < later then
              later = ttl
            end
          end
        end
      end
      at = at + #ids
    end
    if #ids < want then
      done = true
      break
    end
  end
  if #gone > 0 then
    -- The places read are replaced by what stays, in order: the head up to them is taken off and
    -- put back (a list is cut only at its ends).
    local back = from > 0 and rcall('LRANGE', lkey, '0', digits(from - 1)) or {}
    for _, id in ipairs(kept) do back[#back + 1] = id end
    rcall('LTRIM', lkey, digits(at), '-1')
    if #back > 0 then
      local rev = {}
      for i = #back, 1, -1 do rev[#rev + 1] = back[i] end
      rcall_list('LPUSH', lkey, rev)
    end
    unbad(queue, gone)
  end
  if not done then
    lc_add(queue, sec .. ':' .. digits(from + #kept), now())
  elseif rcall('EXISTS', lkey) == 0 then
    rcall('ZREM', key(queue, 'lss'), sec)
  else
    local wait = later
    if live then
      local age = math.max(1000, now() - tonumber(sec) * 1000)
      if not wait or age < wait then wait = age end
    end
    if wait then lc_add(queue, sec, now() + wait) end
  end
  return budget
end

-- Per queue, the second in which lc_step() last found no bucket due (a hint kept between calls:
-- a bucket is due in the second after its outcome expires, so none made later comes due within
-- the second it is made, and checking `lcs` again in that second finds nothing; a stale hint, of
-- another database or after a flush, delays a clean-up by a second at most).
local lc_idle = {}

-- Runs the checks that came due, reading at most about `budget` list entries.
local function lc_step(queue, budget)
  local lcs = key(queue, 'lcs')
  local second = math.floor(now() / 1000)
  if lc_idle[lcs] == second then return end
  local due = rcall('ZRANGE', lcs, '-inf', digits(second), 'BYSCORE', 'LIMIT', '0', '4')
  if #due == 0 then lc_idle[lcs] = second end
  -- A list asked for by several calls (each ignoreResult end asks) is checked once a step.
  local seen = {}
  for _, b in ipairs(due) do
    local bucket = key(queue, 'lc:' .. b)
    while budget > 0 do
      local entries = rcall('LPOP', bucket, '16')
      if not entries then break end
      for _, e in ipairs(entries) do
        if not seen[e] then
          seen[e] = true
          local sec, place = string.match(e, '^(%d+):?(%d*)$')
          if budget <= 0 then
            -- Put off to the next second.
            lc_add(queue, e, now())
          elseif sec then
            budget = check_list(queue, sec, tonumber(place) or 0, budget)
          end
        end
      end
      if #entries < 16 then break end
    end
    if rcall('EXISTS', bucket) == 1 then return end
    rcall('ZREM', lcs, b)
  end
end

-- Per queue, the second the sweep's scan of the lists reached (the scan goes on from it).
local scan_at = {}

-- A sweep's walk over the lists, oldest first, a few at a time, whatever the setting: takes off
-- the head of each list while the records there are gone, and drops lists left empty. It finds
-- what no check was asked for: lists of tasks that ended while listing was off.
local function lc_scan(queue, budget)
  local lss = key(queue, 'lss')
  local from = scan_at[lss] or '-inf'
  while budget > 0 do
    local sec = rcall('ZRANGE', lss, from, '+inf', 'BYSCORE', 'LIMIT', '0', '1')[1]
    if not sec then
      scan_at[lss] = nil
      return
    end
    local lkey = key(queue, 'ls:' .. sec)
    while budget > 0 do
      local ids = rcall('LRANGE', lkey, '0', '99')
      budget = budget - math.max(#ids, 1)
      if #ids == 0 then break end
      if still_there(queue, ids) > 0 then break end
      rcall('LTRIM', lkey, digits(#ids), '-1')
      unbad(queue, ids)
    end
    if rcall('EXISTS', lkey) == 0 then rcall('ZREM', lss, sec) end
    from = '(' .. sec
    scan_at[lss] = from
  end
end

-- Moves the index of an earlier version (`idx`, scored by the enqueue's server time in µs) into
-- lists, up to 1 000 entries a sweep, by each record's createdAt; drops its clean-up buckets (the
-- lists' own checks take their place).
local function legacy_step(queue)
  local idx = key(queue, 'idx')
  local old = rcall('ZRANGE', idx, '0', '999')
  if #old > 0 then
    local keys = {}
    for i, id in ipairs(old) do keys[i] = record(queue, id) end
    local secs, order = {}, {}
    for i = 1, #keys, 200 do
      local recs = rcall('MGET', unpack(keys, i, math.min(i + 199, #keys)))
      for j = 1, #recs do
        local rec = recs[j]
        local sec = rec and second_of(created_of(rec))
        if sec then
          if not secs[sec] then
            secs[sec] = {}
            order[#order + 1] = sec
          end
          local list = secs[sec]
          list[#list + 1] = old[i + j - 1]
        end
      end
    end
    for _, sec in ipairs(order) do
      if rcall_list('RPUSH', key(queue, 'ls:' .. sec), secs[sec]) == #secs[sec] then
        rcall('ZADD', key(queue, 'lss'), sec, sec)
      end
      lc_add(queue, sec, now())
    end
    rcall('ZREMRANGEBYRANK', idx, '0', digits(#old - 1))
  end
  local gcs = key(queue, 'gcs')
  local buckets = rcall('ZRANGE', gcs, '0', '99')
  if #buckets > 0 then
    local keys = {}
    for i, b in ipairs(buckets) do keys[i] = key(queue, 'gc:' .. b) end
    rcall('DEL', unpack(keys))
    rcall('ZREM', gcs, unpack(buckets))
  end
end

-- Starts a call's listing state (begin() in ready.lua). lc_buf holds a queue only once lc_order
-- does: lc_add().
local function begin_listing()
  if not idx_buf or next(idx_buf) then idx_buf = {} end
  if not lc_order or #lc_order > 0 then lc_buf, lc_order = {}, {} end
  if not lc_soon or next(lc_soon) then lc_soon = {} end
end
