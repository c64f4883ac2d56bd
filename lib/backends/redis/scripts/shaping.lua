--[[ shaping.lua: limits across all workers and the result cache (docs/limits.md, docs/cache.md).
  Limits live in the queue's settings (`conf` field `lim`); per limit name L:
  - `lc:L` (hash): the tasks holding a slot of a concurrency limit, id → token;
  - `lr:L` (sorted set): the starts within a rate limit's window, token scored by start time;
  - `lw:L` (sorted set): tasks waiting for a slot of L, scored as `prio` is (lines.lua).
  The cache: `cache` (hash: key → completed outcome), `clru` (sorted set: key → last use, ms),
  `cexp` (sorted set: key → expiry, ms), `cfly` (hash: key → id of the live task computing it);
  `clru` scores are µs, so that uses keep their order.
]]

-- The window a rate limit of `per` ms is kept over: `per` and a margin of a twentieth of it, at
-- most 100 ms (rateWindowMs() in rules.ts: the functions start a few ms after their reservation).
local function rate_window(per)
  return per + math.min(100, math.ceil(per / 20))
end

-- The limits that bind task `name`, sorted by name: {name =, c = concurrency, r = {max, per}};
-- nil when none does.
local function binding(queue, name)
  local lim = conf(queue).limits
  if not lim then return nil end
  local out
  for lname, spec in pairs(lim) do
    if lname == '*' or lname == name or
      (string.sub(lname, -1) == '.' and string.sub(name, 1, #lname) == lname) then
      out = out or {}
      out[#out + 1] = { name = lname, c = spec.c, r = spec.r }
    end
  end
  if out then table.sort(out, function(a, b) return a.name < b.name end) end
  return out
end

-- Before task `id` (named `name`) starts under `token`: checks every limit that binds it. When
-- none blocks, takes a slot of each concurrency limit and counts the start in each rate window,
-- and returns 'ok' and whether it holds slots; else 'hold' and the full limit's name, or 'until'
-- and when the rate window has room (epoch ms).
local function take_slots(queue, id, name, token)
  local b = binding(queue, name)
  if not b then return 'ok', false end
  local t = now()
  for _, l in ipairs(b) do
    if l.c and rcall('HLEN', key(queue, 'lc:' .. l.name)) >= l.c then return 'hold', l.name end
    if l.r then
      local rkey = key(queue, 'lr:' .. l.name)
      local window = rate_window(l.r[2])
      rcall('ZREMRANGEBYSCORE', rkey, '-inf', t - window)
      if rcall('ZCARD', rkey) >= l.r[1] then
        local oldest = rcall('ZRANGE', rkey, 0, 0, 'WITHSCORES')
        return 'until', tonumber(oldest[2]) + window
      end
    end
  end
  local holds = false
  for _, l in ipairs(b) do
    if l.c then
      rcall('HSET', key(queue, 'lc:' .. l.name), id, token)
      holds = true
    end
    if l.r then
      local rkey = key(queue, 'lr:' .. l.name)
      rcall('ZADD', rkey, t, token)
      rcall('PEXPIRE', rkey, rate_window(l.r[2]) + 1000)
    end
  end
  return 'ok', holds
end

-- Puts task `id` aside until a slot of limit `lname` frees.
local function hold(queue, id, prio, lname)
  local n = rcall('INCR', key(queue, 'pseq'))
  rcall('ZADD', key(queue, 'lw:' .. lname), (prio or 0) * PRIO_UNIT + n, id)
end

-- Gives back the slots task `id` holds; for each freed slot, the first task waiting for that
-- limit goes back first in its priority's line (and a worker is woken).
local function free_slots(queue, id, name)
  local b = binding(queue, name)
  if not b then return end
  for _, l in ipairs(b) do
    if l.c and rcall('HDEL', key(queue, 'lc:' .. l.name), id) == 1 then
      local first = rcall('ZPOPMIN', key(queue, 'lw:' .. l.name))
      if first[1] then
        put_first(queue, first[1], math.floor(tonumber(first[2]) / PRIO_UNIT))
        if not conf(queue).paused then wake(queue) end
      end
    end
  end
end

-- Takes a waiting task out of the limits' waiting sets (a cancel); true when it was in one.
local function unhold(queue, id)
  local lim = conf(queue).limits
  if not lim then return false end
  for lname in pairs(lim) do
    if rcall('ZREM', key(queue, 'lw:' .. lname), id) == 1 then return true end
  end
  return false
end

-- A cache entry's last use: server time in µs, one more for each use within a call (so that
-- uses keep their order), as Redis writes scores.
local lru_n = 0
local function lru_score()
  lru_n = lru_n + 1
  return string.format('%.0f', now_micros() + lru_n)
end

-- Drops up to 100 expired cache entries of the queue.
local function cache_expire(queue)
  local ekey = key(queue, 'cexp')
  local gone = rcall('ZRANGE', ekey, '-inf', now(), 'BYSCORE', 'LIMIT', 0, 100)
  if #gone > 0 then
    rcall('HDEL', key(queue, 'cache'), unpack(gone))
    rcall('ZREM', key(queue, 'clru'), unpack(gone))
    rcall('ZREM', ekey, unpack(gone))
  end
end

-- The cached outcome under `ckey` (marked as just used), or nil.
local function cache_get(queue, ckey)
  cache_expire(queue)
  local v = rcall('HGET', key(queue, 'cache'), ckey)
  if v then rcall('ZADD', key(queue, 'clru'), lru_score(), ckey) end
  return v or nil
end

-- Evicts the least recently used entries past the queue's `cacheSize`.
local function cache_trim(queue)
  local lru = key(queue, 'clru')
  local over = rcall('ZCARD', lru) - conf(queue).csize
  if over > 0 then
    local victims = rcall('ZRANGE', lru, 0, over - 1)
    rcall_list('HDEL', key(queue, 'cache'), victims)
    rcall_list('ZREM', lru, victims)
    rcall_list('ZREM', key(queue, 'cexp'), victims)
  end
end

-- Keeps a completed outcome under `ckey` for `ttl` ms (0: the queue's cacheTtl).
local function cache_put(queue, ckey, outcome, ttl)
  if not ttl or ttl <= 0 then ttl = conf(queue).cttl end
  rcall('HSET', key(queue, 'cache'), ckey, outcome)
  rcall('ZADD', key(queue, 'clru'), lru_score(), ckey)
  rcall('ZADD', key(queue, 'cexp'), now() + ttl, ckey)
  cache_trim(queue)
end
