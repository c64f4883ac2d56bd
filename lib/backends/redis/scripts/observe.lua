--[[ observe.lua: what a queue records as things happen, collected during a call and written once at
  its end (flush_observed()): events (when the queue's `events` setting is on) and per-minute
  metrics (when `metrics` is on). docs/events.md and docs/metrics.md describe both.

  Events: stream `ev`, one entry per call, id "<n>-0" where n counts the queue's events (`evn`),
  the last of which is event n (both keys expire a week after the last event, renewed every
  thousand events or so). Its field `f` holds the time (ms, one for the call), \30 (record
  separator), then four values per event, every value followed by \31 (unit separator) but the
  last: its type, its task id, what it says of the task and the rest (JSON of {d = retry delay,
  p = progress, e = {n = error name, m = message, c = code}}, or ''). What it says of the task is
  its name alone (enqueued), or the details head of its run ("<name>|<enqueued>|<attempts>|
  <priority>|<started>|<worker>|<attempt>|<holds>", outbox.lua), or a whole tokens value, whose
  head follows its newline (started), or '' (paused, resumed); an end event's run time is the
  time less <started>. Ids, names and worker ids hold no control characters other than that
  newline, and JSON escapes them, so the separators cannot occur in a value. One flat list is
  built per call and joined once. (Entries written before this format hold field `v`, the same
  values column by column, or `e`, JSON of the columns; readers accept all three.) The stream
  keeps entries from event n − eventsMax on (MINID ~: at least the last eventsMax events), trimmed
  by the calls whose events cross a multiple of 128.
  Metrics: hash `m:<minute start, epoch ms>` with counts c completed, f failed, r retried,
  x expired, k cancelled; w<b> and t<b> wait and run times per bucket b (timeBucket() of rules.ts:
  the first b with duration ≤ 2^b ms, 21 beyond 2^20 ms); ws and ts their sums; it expires a day
  after its minute (METRICS_MINUTES). Hash `mt` holds the totals (fold_metrics()).
]]
local ev_buf, m_buf, observed_order
-- The last call's event list, kept for the next (its array part already grown: growing one from
-- empty cost about 2 000 instructions a task in rounds of 25). Only its first `n` values count, so
-- it is not cleared; one longer than SPARE_MAX is left to the collector.
local ev_spare
local SPARE_MAX = 400
-- How long a queue's event stream outlives its last event (ms): a week.
local EVENTS_TTL = 7 * 86400000

local function observed(queue)
  if not ev_buf[queue] and not m_buf[queue] then observed_order[#observed_order + 1] = queue end
end

-- Records an event of `queue`: its type, task id, what it says of the task (`head`: see above)
-- and the rest (`extra`: a table, or false). A queue whose `events` setting is off keeps none.
local function event(queue, type, id, head, extra)
  if not conf(queue).events then return end
  local e = ev_buf[queue]
  if not e then
    observed(queue)
    e = ev_spare or {}
    ev_spare = nil
    e.n = 0
    ev_buf[queue] = e
  end
  local k = e.n
  e[k + 1], e[k + 2], e[k + 3], e[k + 4] = type, id, head, extra and cjson.encode(extra) or ''
  e.n = k + 4
end

-- True when the queue keeps events (so that a caller builds one only then).
local function events_on(queue)
  return conf(queue).events
end

-- What an outcome that is not `c` says went wrong: {n = name, m = message, c = code}.
local function outcome_error(out)
  local kind = string.sub(out, 1, 1)
  local ok, d = pcall(cjson.decode, string.sub(out, 2))
  if kind == 'x' then
    return { n = 'TaskExpired', m = ok and d.reason or 'expired', c = 'ERR_WORQ_TASK_EXPIRED' }
  elseif kind == 'k' then
    return { n = 'TaskCancelled', m = 'the task was cancelled', c = 'ERR_WORQ_TASK_CANCELLED' }
  end
  local r = ok and type(d) == 'table' and type(d.json) == 'table' and d.json.remote
  if type(r) ~= 'table' then return { n = 'Error', m = 'the task failed' } end
  local code = r.code
  if type(code) ~= 'string' then code = nil end
  return { n = tostring(r.name), m = tostring(r.message), c = code }
end

-- Counts `n` in metric `field` of `queue` for this minute.
local function count(queue, field, n)
  if not conf(queue).metrics then return end
  observed(queue)
  local m = m_buf[queue]
  if not m then
    m = {}
    m_buf[queue] = m
  end
  m[field] = (m[field] or 0) + n
end

-- The histogram fields, by bucket (no number is turned into a name per task).
local BUCKET = { w = {}, t = {} }
for b = 0, 21 do
  BUCKET.w[b], BUCKET.t[b] = 'w' .. b, 't' .. b
end
local SUM = { w = 'ws', t = 'ts' }

-- The histogram bucket of a duration: the first b with ms ≤ 2^b (timeBucket() of rules.ts).
local function time_bucket(ms)
  if ms <= 1 then return 0 end
  local m, e = math.frexp(ms)
  local b = m == 0.5 and e - 1 or e
  return b > 21 and 21 or b
end

-- Counts a duration in the histogram `prefix` ('w' wait, 't' run), and its sum.
local function count_time(queue, prefix, ms)
  if not conf(queue).metrics then return end
  if ms < 0 then ms = 0 end
  count(queue, BUCKET[prefix][time_bucket(ms)], 1)
  count(queue, SUM[prefix], ms)
end

-- Takes back a duration of a worker's report that a call counted (histogramFields() of
-- histograms.ts: its bucket, and its sum in whole ms).
local function uncount_time(queue, prefix, ms)
  if not ms then return end
  count(queue, BUCKET[prefix][time_bucket(ms)], -1)
  count(queue, SUM[prefix], -math.floor(ms + 0.5))
end

-- Counts the wait and the run of a run that a call ends without its worker's report (the sweep; a
-- cancel of an ignoreResult task, whose refused finish finds nothing to count against): its wait
-- from due (the later of its enqueue and runAt, header `h`) to its start, and its length until
-- now, by Redis's clock (its tokens value `held` has the start).
local function count_run(queue, h, held)
  if not conf(queue).metrics or not held.started then return end
  count_time(queue, 'w', held.started - math.max(tonumber(h.e) or 0, tonumber(h.u) or 0))
  count_time(queue, 't', now() - held.started)
end

local function flush_events(queue, e)
  local n = e.n / 4
  local last = rpcall('INCRBY', key(queue, 'evn'), digits(n))
  if type(last) ~= 'number' then
    -- The counter holds what is not a number (written by something other than worq): it starts
    -- over, as when its key was removed (below), rather than fail every call that records events.
    rcall('SET', key(queue, 'evn'), digits(n))
    last = n
  end
  local start = last - n
  local id = digits(last) .. '-0'
  e[1] = now_str() .. '\30' .. e[1]
  local body = table.concat(e, '\31', 1, e.n)
  local skey = key(queue, 'ev')
  local added
  -- Trimmed when this call's events cross a multiple of 128 (MINID ~ drops whole nodes of the
  -- stream, so at least the last evmax events stay); a call between writes no bound to parse.
  if math.floor(start / 128) < math.floor(last / 128) then
    local floor = last - conf(queue).evmax
    if floor < 0 then floor = 0 end
    added = rpcall('XADD', skey, 'MINID', '~', digits(floor), id, 'f', body)
  else
    added = rpcall('XADD', skey, id, 'f', body)
  end
  if type(added) == 'table' and added.err then
    -- The counter went back (its key was removed): the stream starts over from it.
    rcall('DEL', skey)
    rcall('XADD', skey, id, 'f', body)
  end
  -- A queue left alone forgets its events after EVENTS_TTL: the TTL is renewed about every
  -- thousand events (and on the first).
  if start == 0 or math.floor(start / 1000) < math.floor(last / 1000) then
    rcall('PEXPIRE', skey, digits(EVENTS_TTL))
    rcall('PEXPIRE', key(queue, 'evn'), digits(EVENTS_TTL))
  end
end

-- The current minute's start as text, made once a minute (kept between calls).
local minute_ms, minute_s

-- One HINCRBY per field (counts and sums are whole numbers): reading the minute's values, adding in
-- Lua and writing them back cost Redis about 10 000 instructions per field against about 7 000.
local function flush_metrics(queue, m)
  local start = now() - now() % 60000
  if start ~= minute_ms then minute_ms, minute_s = start, digits(start) end
  local minute = minute_s
  local mkey = key(queue, 'm:' .. minute)
  -- Counts and sums only grow, so a field that comes back equal to what was added is new, and a
  -- new hash has only new fields: the call that makes the minute's hash sets its TTL. A field new
  -- to a hash made earlier sets it again (the same instant): a few times a minute at most.
  local fresh = false
  for f, n in pairs(m) do
    -- A sum that rounds to 0 adds nothing (readers take a missing field as 0).
    local whole = math.floor(n + 0.5)
    if whole ~= 0 then
      local got = rpcall('HINCRBY', mkey, f, digits(whole))
      if type(got) ~= 'number' then
        -- A field that holds what is not a whole number (written by something other than worq)
        -- starts over, rather than fail every call that ends a task in this minute.
        rcall('HSET', mkey, f, digits(whole))
        fresh = true
      elseif got == whole then
        fresh = true
      end
    end
  end
  if fresh then
    rcall('PEXPIREAT', mkey, digits(start + 1441 * 60000))
    -- The totals begin with the queue's first minute (fold_metrics()).
    if rcall('HSETNX', key(queue, 'mt'), 'upto', minute) == 1 then
      rcall('PEXPIRE', key(queue, 'mt'), 30 * 86400000)
    end
  end
end

-- Folds the minutes before the current one that are not in the totals yet (hash `mt`: the same
-- fields as a minute's, and `upto`, the first minute not folded) into them, at most 60 per call,
-- so that the totals only grow. The sweep calls it.
local function fold_metrics(queue)
  local mt = key(queue, 'mt')
  local upto = tonumber(rcall('HGET', mt, 'upto') or '')
  if not upto then return end
  local current = now() - now() % 60000
  local acc, steps = {}, 0
  while upto < current and steps < 60 do
    local flat = rcall('HGETALL', key(queue, 'm:' .. upto))
    for i = 1, #flat - 1, 2 do
      -- (`z`: a marker that earlier versions wrote.)
      -- (A value that is not a number, written by something other than worq, counts as 0: the
      -- sweep that folds must not fail on it.)
      if flat[i] ~= 'z' then acc[flat[i]] = (acc[flat[i]] or 0) + (tonumber(flat[i + 1]) or 0) end
    end
    upto = upto + 60000
    steps = steps + 1
  end
  if steps == 0 then return end
  local fields = {}
  for f in pairs(acc) do fields[#fields + 1] = f end
  local set = { 'upto', upto }
  if #fields > 0 then
    local old = rcall('HMGET', mt, unpack(fields))
    for i, f in ipairs(fields) do
      set[#set + 1] = f
      set[#set + 1] = (tonumber(old[i]) or 0) + acc[f]
    end
  end
  rcall('HSET', mt, unpack(set))
  rcall('PEXPIRE', mt, 30 * 86400000)
end

-- Writes what this call observed.
local function flush_observed()
  if #observed_order == 0 then return end
  for _, queue in ipairs(observed_order) do
    local e = ev_buf[queue]
    if e then
      flush_events(queue, e)
      if e.n <= SPARE_MAX then ev_spare = e end
    end
    if m_buf[queue] then flush_metrics(queue, m_buf[queue]) end
  end
  ev_buf, m_buf, observed_order = {}, {}, {}
end

-- (ev_buf and m_buf hold a queue only once observed_order does: observed().)
local function begin_observe()
  if not observed_order or #observed_order > 0 then ev_buf, m_buf, observed_order = {}, {}, {} end
end
