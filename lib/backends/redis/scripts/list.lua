--[[ list.lua: one step of a listing, newest first (Backend.list; docs/tasks.md).
  KEYS[1]  a key of the queue (its slot)
  ARGV[1]  key namespace ('worq')
  ARGV[2]  queue
  ARGV[3]  statuses, comma-separated ('' = all)
  ARGV[4]  name ('' = any; ending in '.': a namespace prefix)
  ARGV[5]  the highest listing score (µs) to read: '+inf', or '(<score>' (exclusive): created
           before a time, or where the last step stopped
  ARGV[6]  the lowest: '-inf', or '(<score>' (created after a time)
  ARGV[7]  matches still to skip (the offset), ARGV[8] matches still wanted
  ARGV[9]  '1' for the first step of a listing
  ARGV[10] how many index entries this step may read
  A step reads `idx`, or `bad` when only failed, expired or cancelled tasks are asked for; when
  only processing or pending tasks are asked for and they are few, it reads those.
  Returns: { 'off' } when the queue's listing setting is off; else { matches, skipped, next }:
    matches  per task: id, record, tokens value or false, progress or false, listing score
    skipped  how many matches this step skipped (of ARGV[7])
    next     the ARGV[5] of the next step ('(<score>'), or false when nothing is left to read
]]
if not conf(QUEUE).listing then return { 'off' } end
local want_status = {}
local any_status = ARGV[3] == ''
for s in string.gmatch(ARGV[3], '[^,]+') do want_status[s] = true end
local name, prefix = ARGV[4], string.sub(ARGV[4], -1) == '.'
local max, min = ARGV[5], ARGV[6]
local function bound(spec, default)
  if spec == '+inf' or spec == '-inf' then return default end
  return tonumber(string.sub(spec, 2))
end
local high, low = bound(max, math.huge), bound(min, -math.huge)
local skip, want = tonumber(ARGV[7]), tonumber(ARGV[8])
local budget = tonumber(ARGV[10])
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

local matches, skipped = {}, 0
-- Checks candidates (ids with their scores, newest first); returns false once enough matched.
local function consider(ids, scores)
  local recs = rcall('MGET', unpack(ids)) -- ids are record keys here
  local live = rcall('ZMSCORE', leases, unpack(scores.ids))
  for i, id in ipairs(scores.ids) do
    local rec = recs[i]
    if rec then
      local st = status_of(rec, live[i] ~= false and live[i] ~= nil)
      local n = name_of(rec)
      if (any_status or want_status[st]) and
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
          matches[m + 1], matches[m + 2], matches[m + 3], matches[m + 4], matches[m + 5] =
            id, rec, v, p, scores.by[i]
          if #matches / 5 >= want then return false end
        end
      end
    end
  end
  return true
end

local function check(ids_with_scores)
  if #ids_with_scores == 0 then return true end
  local keys, ids, by = {}, {}, {}
  for i = 1, #ids_with_scores - 1, 2 do
    ids[#ids + 1] = ids_with_scores[i]
    by[#by + 1] = ids_with_scores[i + 1]
    keys[#keys + 1] = record(QUEUE, ids_with_scores[i])
  end
  return consider(keys, { ids = ids, by = by })
end

-- Few processing or pending tasks: read them, not the whole index.
local only_live = not any_status
for s in pairs(want_status) do
  if s ~= 'processing' and s ~= 'pending' then only_live = false end
end
if only_live and ARGV[9] == '1' then
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
    if #ids > 0 then
      local scores = rcall_read('ZMSCORE', key(QUEUE, 'idx'), ids)
      for i, id in ipairs(ids) do
        local s = tonumber(scores[i])
        if s and s < high and s > low then
          found[#found + 1] = { id, scores[i], s }
        end
      end
      table.sort(found, function(a, b) return a[3] > b[3] end)
    end
    local flat = {}
    for _, f in ipairs(found) do
      flat[#flat + 1] = f[1]
      flat[#flat + 1] = f[2]
    end
    for i = 1, #flat, 2000 do
      if not check({ unpack(flat, i, math.min(i + 1999, #flat)) }) then break end
    end
    return { matches, skipped, false }
  end
end

local bad_only = not any_status
for s in pairs(want_status) do
  if s ~= 'failed' and s ~= 'expired' and s ~= 'cancelled' then bad_only = false end
end
local source = key(QUEUE, bad_only and 'bad' or 'idx')
-- Nothing to filter: an offset is skipped by rank (O(log n)), not read entry by entry. An entry
-- whose outcome expired in the last seconds (before the sweep's clean-up took it out) counts.
if skip > 0 and any_status and name == '' then
  local total = rcall('ZCOUNT', source, min, max)
  if total <= skip then return { matches, total, false } end
  local above = max == '+inf' and 0 or rcall('ZCOUNT', source, string.sub(max, 2), '+inf')
  local at = rcall('ZRANGE', source, above + skip - 1, above + skip - 1, 'REV', 'WITHSCORES')
  skipped, max = skip, '(' .. at[2]
end
local read = 0
while read < budget do
  local n = math.min(200, budget - read)
  local got = rcall('ZRANGE', source, max, min, 'BYSCORE', 'REV', 'LIMIT', 0, n, 'WITHSCORES')
  if #got == 0 then return { matches, skipped, false } end
  read = read + #got / 2
  if not check(got) then return { matches, skipped, false } end
  if #got / 2 < n then return { matches, skipped, false } end
  max = '(' .. got[#got]
end
return { matches, skipped, max }
