--[[ list.lua: one step of a listing, newest first (Backend.list; docs/tasks.md).
  KEYS[1]  a key of the queue (its slot)
  ARGV[1]  key namespace ('worq')
  ARGV[2]  queue
  ARGV[3]  statuses, comma-separated ('' = all)
  ARGV[4]  name ('' = any; ending in '.': a namespace prefix)
  ARGV[5]  created before this time (epoch ms, exclusive), '' for no bound
  ARGV[6]  created after this time (epoch ms, exclusive), '' for no bound
  ARGV[7]  matches still to skip (the offset), ARGV[8] matches still wanted
  ARGV[9]  where the last step stopped (its `next`), '' for the first step
  ARGV[10] how many index entries this step may read
  A step reads the lists of `lss` (listing.lua) from the newest second down, each from its end,
  or `bad` when only failed, expired or cancelled tasks are asked for; when only processing or
  pending tasks are asked for and they are few, it reads those. An entry whose record is gone, or
  belongs to a later run of its id (created in another second), is passed over.
  Returns: { 'off' } when the queue's listing setting is off; else { matches, skipped, next }:
    matches  per task: id, record, tokens value or false, progress or false
    skipped  how many matches this step skipped (of ARGV[7])
    next     the ARGV[9] of the next step, or false when nothing is left to read
]]
if not conf(QUEUE).listing then return { 'off' } end
local want_status = {}
local any_status = ARGV[3] == ''
for s in string.gmatch(ARGV[3], '[^,]+') do want_status[s] = true end
local name, prefix = ARGV[4], string.sub(ARGV[4], -1) == '.'
local before, after = tonumber(ARGV[5]), tonumber(ARGV[6])
local skip, want = tonumber(ARGV[7]), tonumber(ARGV[8])
local cursor, budget = ARGV[9], tonumber(ARGV[10])
local tokens, leases = key(QUEUE, 'tokens'), key(QUEUE, 'leases')

local function status_of(rec, processing)
  local s = string.sub(rec, 1, 1)
  if s == 'P' then return 'pending' end
  if s == 'E' then return processing and 'processing' or 'enqueued' end
  if s == 'c' then return 'completed' end
  if s == 'f' then return 'failed' end
  if s == 'x' then return 'expired' end
  return 'cancelled'
end

local function name_of(rec)
  if is_live(rec) then return string.match(rec, '^[PE]%d+:{"n":"([^"]*)"') end
  return string.match(rec, '^[^\n]*\n[^\n]*\n[^\n]*\n([^|\n]*)')
end

local function in_time(c)
  return (not before or (c and c < before)) and (not after or (c and c > after))
end

local matches, skipped = {}, 0
-- Checks candidates, newest first: ids and their records (false when gone); `sec`, for entries of
-- a list, is its second. Returns false once enough matched.
local function consider(ids, recs, sec)
  local live = rcall('ZMSCORE', leases, unpack(ids))
  for i, id in ipairs(ids) do
    local rec = recs[i]
    if rec then
      local c = tonumber(created_of(rec))
      local st = status_of(rec, live[i] ~= false and live[i] ~= nil)
      local n = name_of(rec)
      if (not sec or not c or math.floor(c / 1000) == sec) and in_time(c) and
        (any_status or want_status[st]) and
        (name == '' or (prefix and n and string.sub(n, 1, #name) == name) or n == name) then
        if skipped < skip then
          skipped = skipped + 1
        else
          local v, p = false, false
          if st == 'processing' then
            local got = rcall('HMGET', tokens, id, 'p:' .. id)
            v, p = got[1] or false, got[2] or false
          end
          local m = #matches
          matches[m + 1], matches[m + 2], matches[m + 3], matches[m + 4] = id, rec, v, p
          if #matches / 4 >= want then return false end
        end
      end
    end
  end
  return true
end

-- The records of `ids`, in pieces.
local function records(ids)
  local recs = {}
  for i = 1, #ids, 200 do
    local keys = {}
    for j = i, math.min(i + 199, #ids) do keys[#keys + 1] = record(QUEUE, ids[j]) end
    local got = rcall('MGET', unpack(keys))
    for j = 1, #got do recs[i + j - 1] = got[j] end
  end
  return recs
end

-- Few processing or pending tasks: read them, not the whole index.
local only_live = not any_status
for s in pairs(want_status) do
  if s ~= 'processing' and s ~= 'pending' then only_live = false end
end
if only_live and cursor == '' then
  local ids = {}
  if want_status.processing and lease_count(QUEUE) <= 10000 then
    for _, id in ipairs(rcall('ZRANGE', leases, '-inf', '(+inf', 'BYSCORE')) do
      ids[#ids + 1] = id
    end
  else
    only_live = want_status.processing == nil
  end
  if want_status.pending and rcall('SCARD', key(QUEUE, 'pending')) <= 10000 then
    for _, id in ipairs(rcall('SMEMBERS', key(QUEUE, 'pending'))) do ids[#ids + 1] = id end
  elseif want_status.pending then
    only_live = false
  end
  if only_live then
    local found = {}
    local recs = records(ids)
    for i, id in ipairs(ids) do
      local rec = recs[i]
      local c = rec and tonumber(created_of(rec))
      if c and in_time(c) then found[#found + 1] = { id, rec, c } end
    end
    table.sort(found, function(a, b) return a[3] > b[3] end)
    for i = 1, #found, 2000 do
      local part_ids, part_recs = {}, {}
      for j = i, math.min(i + 1999, #found) do
        part_ids[#part_ids + 1] = found[j][1]
        part_recs[#part_recs + 1] = found[j][2]
      end
      if not consider(part_ids, part_recs) then break end
    end
    return { matches, skipped, false }
  end
end

local bad_only = not any_status
for s in pairs(want_status) do
  if s ~= 'failed' and s ~= 'expired' and s ~= 'cancelled' then bad_only = false end
end
local read = 0

if bad_only then
  -- `bad` is scored createdAt × 1000 plus a counter (listing.lua).
  local bad = key(QUEUE, 'bad')
  local max = cursor ~= '' and cursor or (before and '(' .. digits(before * 1000) or '+inf')
  local min = after and '(' .. digits(after * 1000 + 999) or '-inf'
  while read < budget do
    local n = math.min(200, budget - read)
    local got = rcall('ZRANGE', bad, max, min, 'BYSCORE', 'REV', 'LIMIT', '0', digits(n),
      'WITHSCORES')
    if #got == 0 then return { matches, skipped, false } end
    read = read + #got / 2
    local ids = {}
    for i = 1, #got - 1, 2 do ids[#ids + 1] = got[i] end
    if not consider(ids, records(ids)) then return { matches, skipped, false } end
    if #got / 2 < n then return { matches, skipped, false } end
    max = '(' .. got[#got]
  end
  return { matches, skipped, max }
end

-- The lists, newest second first, each from its end. A cursor is `<second>:<place>:<id>`: go on
-- from that place down, where `id` (read last) sat just above it; if the list changed at its head
-- since (a clean-up), the id is looked for again.
local lss = key(QUEUE, 'lss')
local lo = after and digits(math.floor((after + 1) / 1000)) or '-inf'
local sec, place, last
if cursor ~= '' then
  local s, p, id = string.match(cursor, '^(%d+):(%-?%d+):(.*)$')
  sec, place = tonumber(s), tonumber(p)
  local lkey = key(QUEUE, 'ls:' .. s)
  if id ~= '' and rcall('LINDEX', lkey, digits(place + 1)) ~= id then
    local at = rcall('LPOS', lkey, id)
    if at then place = at - 1 end
  end
else
  local hi = before and digits(math.floor((before - 1) / 1000)) or '+inf'
  local first = rcall('ZRANGE', lss, hi, lo, 'BYSCORE', 'REV', 'LIMIT', '0', '1')[1]
  if not first then return { matches, skipped, false } end
  sec = tonumber(first)
end
-- Nothing to filter: an offset is skipped by counting, not read entry by entry (an entry whose
-- outcome expired before its list's clean-up counts). A list of a second the time bounds cut is
-- read.
local plain = any_status and name == ''
local lo_in = after and math.floor(after / 1000) + 1
local hi_in = before and math.floor(before / 1000) - 1
while true do
  local s = digits(sec)
  local lkey = key(QUEUE, 'ls:' .. s)
  if not place then place = rcall('LLEN', lkey) - 1 end
  if plain and skipped < skip and (not lo_in or sec >= lo_in) and (not hi_in or sec <= hi_in) then
    local jump = math.min(skip - skipped, place + 1)
    skipped, place, last = skipped + jump, place - jump, nil
  end
  while place >= 0 do
    if read >= budget then
      return { matches, skipped, s .. ':' .. digits(place) .. ':' .. (last or '') }
    end
    local n = math.min(200, budget - read, place + 1)
    local ids = rcall('LRANGE', lkey, digits(place - n + 1), digits(place))
    read = read + n
    if #ids == 0 then break end
    local newest = {}
    for i = #ids, 1, -1 do newest[#newest + 1] = ids[i] end
    if not consider(newest, records(newest), sec) then return { matches, skipped, false } end
    place, last = place - n, ids[1]
  end
  -- A second counts as an entry read, so that a run of emptied lists ends the step too.
  read = read + 1
  if read >= budget then return { matches, skipped, s .. ':-1:' } end
  local nxt = rcall('ZRANGE', lss, '(' .. s, lo, 'BYSCORE', 'REV', 'LIMIT', '0', '1')[1]
  if not nxt then return { matches, skipped, false } end
  sec, place, last = tonumber(nxt), nil, nil
end
