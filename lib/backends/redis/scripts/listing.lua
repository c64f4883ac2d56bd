--[[ listing.lua: the listing index and its clean-up, written for every task enqueued or ended
  while the queue's `listing` setting is on (list.lua reads it). `idx` (sorted set) holds every
  task enqueued while it was on, scored by the enqueue's server time in µs (one task of a batch a
  µs after the other), so `list` pages newest first; `bad` (sorted set, the same scores) those of
  them that failed, expired or were cancelled, so that listing those statuses need not read every
  task. A task that ends while listing is on and keeps an outcome has its id written into the
  clean-up bucket of the second after the one its outcome expires in: `gc:<second>` (list of ids),
  found through `gcs` (sorted set of those seconds); gc_step() removes the id from `idx` and `bad`
  then, unless its record is still there: a kept outcome moves to a later bucket, a new run of the
  same id makes its own when it ends. An ended task that keeps no outcome (ignoreResult) leaves
  `idx` at once.
]]

-- Listing entries collected during the call: new ones (queue -> score, id, score, id, …) and
-- clean-up ones (queue -> second -> list).
local idx_buf, gc_buf, gc_order

-- The call's time in µs (the listing scores' base) and its text, made once a call; the text less
-- its last three digits, and those as a number, once a call has a second task.
local score_base, score_s, score_head, score_tail

-- The listing score of the i-th task of this call, as text: the base plus i. Past the first, the
-- last three digits are made with string.char, where string.format costs about 1 300
-- instructions a task.
local function score_text(i)
  if not score_base then
    score_base = now_micros()
    score_s, score_head = digits(score_base), nil
  end
  if i == 0 then return score_s end
  if not score_head then
    score_head, score_tail = string.sub(score_s, 1, -4), score_base % 1000
  end
  local t = score_tail + i
  if t >= 1000 then return digits(score_base + i) end
  local c = t % 10
  local b = (t - c) / 10 % 10
  return score_head .. string.char(48 + (t - t % 100) / 100, 48 + b, 48 + c)
end

-- Lists the i-th task enqueued by this call (written by flush_listing()).
local function index_add(queue, id, i)
  local list = idx_buf[queue]
  if not list then
    list = {}
    idx_buf[queue] = list
  end
  list[#list + 1] = score_text(i)
  list[#list + 1] = id
end

-- The clean-up bucket of an outcome that expires at `expires_ms`: the second after the one it
-- expires in. Redis keeps a key up to and including the millisecond it expires at, so a bucket of
-- that very second could come due while the record is still there.
local function gc_second(expires_ms)
  return math.floor(expires_ms / 1000) + 1
end

local function gc_add(queue, id, expires_ms)
  local sec = gc_second(expires_ms)
  local q = gc_buf[queue]
  if not q then
    q = {}
    gc_buf[queue] = q
    gc_order[#gc_order + 1] = queue
  end
  local list = q[sec]
  if not list then
    list = {}
    q[sec] = list
  end
  list[#list + 1] = id
end

-- A bucket is in `gcs` for as long as it exists: it is registered by the push that creates it, and
-- gc_step() unregisters it once emptied. So a push onto a bucket that was there already
-- registers nothing.
local function flush_listing()
  if next(idx_buf) then
    for queue, list in pairs(idx_buf) do rcall_list('ZADD', key(queue, 'idx'), list) end
    idx_buf = {}
  end
  if #gc_order == 0 then return end
  for _, queue in ipairs(gc_order) do
    local secs = {}
    for sec, list in pairs(gc_buf[queue]) do
      local s = digits(sec)
      if rcall_list('RPUSH', key(queue, 'gc:' .. s), list) == #list then
        secs[#secs + 1] = s
        secs[#secs + 1] = s
      end
    end
    if #secs > 0 then rcall_list('ZADD', key(queue, 'gcs'), secs) end
  end
  gc_buf, gc_order = {}, {}
end

-- Per queue, the second in which gc_step() last found no bucket due (a hint kept between calls:
-- a bucket is due in the second after its outcome expires, so none made later comes due within
-- the second it is made, and checking `gcs` again in that second finds nothing; a stale hint, of
-- another database or after a flush, delays a clean-up by a second at most).
local gc_idle = {}

-- Removes the listing entries of up to `budget` outcomes that expired by now.
local function gc_step(queue, budget)
  local gcs = key(queue, 'gcs')
  local second = math.floor(now() / 1000)
  if gc_idle[gcs] == second then return end
  local due = rcall('ZRANGE', gcs, '-inf', digits(second), 'BYSCORE', 'LIMIT', '0', '4')
  if #due == 0 then gc_idle[gcs] = second end
  local idx = key(queue, 'idx')
  for _, sec in ipairs(due) do
    if budget <= 0 then return end
    local bucket = key(queue, 'gc:' .. sec)
    local ids = rcall('LPOP', bucket, digits(budget))
    -- Fewer than asked: the bucket is empty now.
    local emptied = not ids or #ids < budget
    if ids then
      budget = budget - #ids
      -- A bucket comes due after its outcomes expired, so nearly always every record is gone: one
      -- EXISTS of them all tells (a PTTL each cost Redis about 5 000 instructions a task). When
      -- any is still there, each is looked at.
      local keys = {}
      for i, id in ipairs(ids) do keys[i] = record(queue, id) end
      local there = 0
      for i = 1, #keys, PIECE do
        there = there + rcall('EXISTS', unpack(keys, i, math.min(i + PIECE - 1, #keys)))
      end
      local gone = ids
      if there > 0 then
        gone = {}
        for i, id in ipairs(ids) do
          local ttl = rcall('PTTL', keys[i])
          if ttl == -2 then
            gone[#gone + 1] = id
          elseif ttl >= 0 then
            -- An outcome still kept (a script's clock runs behind TIME): its entry moves to the
            -- bucket of the second after it expires. A record without a TTL is a new run of the
            -- id, whose end makes its own bucket.
            local later = digits(gc_second(now() + ttl))
            local rest = key(queue, 'gc:' .. later)
            if rcall('RPUSH', rest, id) == 1 then rcall('ZADD', gcs, later, later) end
          end
        end
      end
      if #gone > 0 then
        rcall_list('ZREM', idx, gone)
        rcall_list('ZREM', key(queue, 'bad'), gone)
      end
    end
    if emptied or rcall('EXISTS', bucket) == 0 then rcall('ZREM', gcs, sec) end
  end
end

-- Starts a call's listing state (begin() in ready.lua). gc_buf holds a queue only once gc_order
-- does: gc_add().
local function begin_listing()
  if not idx_buf or next(idx_buf) then idx_buf = {} end
  if not gc_order or #gc_order > 0 then gc_buf, gc_order = {}, {} end
  score_base = nil
end
