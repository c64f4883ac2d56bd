--[[ common.lua: helpers shared by every operation. lua-source.ts puts the helper files first, in
  the order common, outbox, observe, lines, shaping, listing, store, ready, admit, then the
  operations. Each operation is the body of a function of (keys, args) that starts with
  begin(args) (ready.lua): the state of one call below lives in upvalues, which a Redis function
  library keeps between calls, so begin() resets all of it. Every operation declares one key,
  KEYS[1], a key of its queue (so Redis Cluster routes it to the queue's slot), takes args[1] =
  the key namespace ('worq') and args[2] = its queue, and reads its arguments as ARGV.

  A live task record (key t:<id>, a string) is
      <state><attempts made>:<header JSON>\n<payload>
  state 'P' = pending (waits for Deferred arguments, or for an identical call: the cache's single
  flight), 'E' = enqueued, delayed, held by a limit, or processing (the tokens hash tells
  processing apart).
  Header fields: n name, c client id (results kept), r resultTimeout, i ignoreResult, h heartrate,
  a attempts allowed, b backoff {type, delay, jitter, maxDelay}, d deps {{queue, id}, ...},
  o 'p' when onError is 'pass', u runAt, e enqueued at (ms, the enqueuer's clock), g generation
  (unique per enqueue), p priority (absent: 0), m metadata (JSON text), k cache key ('' = computed
  when ready) and kt its ttl (0 = the queue's), tr trace context, x other options ({timeout}),
  f the tag of the token whose finish put it back for another attempt (requeue()).

  When the task ends the same key holds, with a PX of resultTimeout (or is deleted: ignoreResult):
      <outcome>\n<tag>\n<generation>\n<details>[\nP<progress>][\nM<metadata>][\nH<header>\nA<payload>]
  outcome: first character c, f, x or k, JSON after it (no newline); tag: of the token whose
  finish stored it, or whose run a cancel ended ('' otherwise); details (end_task() in store.lua):
  "<name>|<enqueued>|<attempts>|<priority>|<started>|<worker>|<attempt>|<held limit slots 0/1>|
  <flags>|<finished>" (times in epoch ms; flags: C = from the cache; started and worker '' when
  it never ran: the tokens value's head, then what the end adds);
  the call (H, A) is kept for a task that did not complete (to retry it by hand). The generation
  lets a resent enqueue recognise a task that has already ended (held() in admit.lua), the tag a
  resent exchange its own finish (finished_by()); readers take the outcome alone with
  stored_outcome().
  Dependents of a task (hash `dependents`, field = the task id) are lines
  "<queue>\t<id>\t<slot>\t<generation>\n", slot 'c' for a follower of the cache's single flight
  (ids and queue names hold no control characters); once that text has DEPS_SPILL bytes, the
  task's further dependents go to the sorted set `dm:<id>`, a line per member scored by its place
  (add_dependent()).
]]
-- The current call's arguments, key namespace and queue. SPLIT: the call keeps to its queue's slot
-- (a Redis Cluster; the namespace argument ends with '!'): what it owes other queues is handed over
-- in a second step (owe()).
local ARGV, PREFIX, QUEUE, SPLIT

-- The standard library and redis.call as locals of the library (upvalues), set by the first call
-- (begin_common()), since a Redis function library may not read them while it loads. A global is
-- a table lookup on every use, an upvalue is not: a task costs Redis about 2 % fewer
-- instructions, a lone call nearly 4 % (docs/redis.md). `rcall` is redis.call, `rpcall`
-- redis.pcall.
local function runtime_globals()
  return string, table, math, cjson, tonumber, unpack, ipairs, pairs, type, redis.call, redis.pcall
end
local string, table, math, cjson, tonumber, unpack, ipairs, pairs, type, rcall, rpcall

-- Mirrors keys.ts queueKey(): worq:{<queue>}:<suffix>.
local function key(queue, suffix)
  return PREFIX .. ':{' .. queue .. '}:' .. suffix
end

-- The key of a task's record: key(queue, 't:' .. id) in one concatenation (hot paths).
local function record(queue, id)
  return PREFIX .. ':{' .. queue .. '}:t:' .. id
end

local now_ms, now_us, now_s
-- Server time in ms (one TIME per script call, taken lazily).
local function now()
  if not now_ms then
    local t = rcall('TIME')
    now_us = tonumber(t[1]) * 1000000 + tonumber(t[2])
    now_ms = math.floor(now_us / 1000)
  end
  return now_ms
end

-- An integral number as a decimal string. A Lua number given to redis.call, or joined with `..`,
-- is written with the float formats %.17g and %.14g, which cost several thousand instructions
-- each (about 2 µs); %d costs a tenth of that. Every number the scripts pass on a hot path goes
-- through here (constants are written as strings); one that is not integral keeps %.17g. The
-- counts a call writes (tasks, events, slots, metric increments) are mostly small: 0 to 255 are
-- made once (SMALL, filled by the library's first call), where string.format costs about 1 300
-- instructions each time.
local SMALL
local function digits(n)
  local s = SMALL[n]
  if s then return s end
  if n == math.floor(n) then return string.format('%d', n) end
  return string.format('%.17g', n)
end

-- Whole numbers that recur from call to call (result timeouts, heartrates, the counts and park
-- lengths a worker's calls pass) parsed once: tonumber() of a string costs about 1 200
-- instructions (strtod, twice). The memo is bounded.
local parsed, parsed_count = {}, 0
local function num(s)
  local n = parsed[s]
  if n then return n end
  n = tonumber(s)
  if parsed_count >= 256 then parsed, parsed_count = {}, 0 end
  parsed[s], parsed_count = n, parsed_count + 1
  return n
end

-- Server time in ms as a string (made once per call: the times stored with every task).
local function now_str()
  if not now_s then now_s = digits(now()) end
  return now_s
end

-- Server time in µs (the listing index's order).
local function now_micros()
  now()
  return now_us
end

-- A lease's length for a heartrate: leaseMs() of rules.ts (2 × heartrate + LEASE_GRACE_MS).
local function lease_ms(heartrate)
  return 2 * heartrate + 1000
end

local function is_live(rec)
  local s = string.sub(rec, 1, 1)
  return s == 'P' or s == 'E'
end

-- Splits a live record: state, attempts made, header table, header start, payload start.
local function parse(rec)
  local colon = string.find(rec, ':', 2, true)
  local nl = string.find(rec, '\n', colon + 1, true)
  local header = cjson.decode(string.sub(rec, colon + 1, nl - 1))
  return string.sub(rec, 1, 1), tonumber(string.sub(rec, 2, colon - 1)), header, colon, nl
end

-- Attempts made and header of a live record (for pcall).
local function parse_made(rec)
  local _, made, h = parse(rec)
  return made, h
end

-- How long an outcome is kept (0: dropped at once).
local function keep_ms(h)
  if h.i then return 0 end
  return h.r
end

-- backoffDelay() of rules.ts (capped at MAX_DURATION_MS, 100 years).
local function backoff_delay(b, attempt, r)
  local ms = b[2]
  if b[1] == 'exponential' then ms = b[2] * 2 ^ math.min(attempt - 1, 1000) end
  if b[4] > 0 and ms > b[4] then ms = b[4] end
  if ms > 3153600000000 then ms = 3153600000000 end
  return math.floor(ms * (1 - b[3] * r) + 0.5)
end

local function expired_outcome(name, queue, id, reason, attempts)
  return 'x' .. cjson.encode({ taskName = name, queue = queue, taskId = id, reason = reason,
    attempts = attempts })
end

local function cancelled_outcome(name, queue, id)
  return 'k' .. cjson.encode({ taskName = name, queue = queue, taskId = id })
end

-- Registers a dependent (its line, above) of task `id` of `queue`. The text in `dependents` takes
-- lines until it has DEPS_SPILL bytes; later ones go to the sorted set `dm:<id>`, scored by their
-- place, so that the n-th dependent of a wide fan-out costs what the first did instead of copying
-- the n − 1 lines before it (8 500 dependents of one task took 5.6 s to enqueue, nearly all of it
-- copying), and a line there already is found without a scan. `once`: not when the line is there
-- already (a link done again).
local DEPS_SPILL = 4096
local function add_dependent(queue, id, line, once)
  local dkey = key(queue, 'dependents')
  local text = rcall('HGET', dkey, id) or ''
  if once and string.find(text, line, 1, true) then return end
  if #text < DEPS_SPILL then
    rcall('HSET', dkey, id, text .. line)
  else
    local mkey = key(queue, 'dm:' .. id)
    rcall('ZADD', mkey, 'NX', digits(rcall('ZCARD', mkey)), line)
  end
end

-- The whole dependents text of task `id`, given what its `dependents` field held (`text`, or
-- false): with its spilled lines (add_dependent()), in order, whose set goes. The caller deletes
-- the field.
local function all_dependents(queue, id, text)
  if not text or #text < DEPS_SPILL then return text end
  local mkey = key(queue, 'dm:' .. id)
  local more = rcall('ZRANGE', mkey, 0, -1)
  if #more == 0 then return text end
  rcall('DEL', mkey)
  return text .. table.concat(more)
end

-- Lua's unpack() gives at most about 8 000 values (the C stack of Redis's Lua 5.1: "too many
-- results to unpack"), and some lists the scripts hand to one command grow with a queue: the ids a
-- purge or a cascade ends (their listing clean-up), a cache shrunk at once, the pending or
-- processing tasks a listing reads, the tasks of a pool with thousands of slots. Those commands
-- go in pieces of at most PIECE values: even, so that score/member and field/value pairs stay
-- together. A list that fits, the usual case, is one call as before.
local PIECE = 4000

-- redis.call(cmd, k, <list from its entry `from`, 1 unless given>) in pieces, each with `opt`
-- first when given (a ZADD's 'XX'); the last piece's reply (nil for nothing to send).
local function rcall_list(cmd, k, list, opt, from)
  local n, reply = #list, nil
  for i = from or 1, n, PIECE do
    local j = math.min(i + PIECE - 1, n)
    if opt then
      reply = rcall(cmd, k, opt, unpack(list, i, j))
    else
      reply = rcall(cmd, k, unpack(list, i, j))
    end
  end
  return reply
end

-- A read of one value per entry of `list` (HMGET, ZMSCORE) in pieces: the replies, joined.
local function rcall_read(cmd, k, list)
  local n = #list
  if n <= PIECE then return rcall(cmd, k, unpack(list)) end
  local all = {}
  for i = 1, n, PIECE do
    local part = rcall(cmd, k, unpack(list, i, math.min(i + PIECE - 1, n)))
    for j = 1, #part do all[#all + 1] = part[j] end
  end
  return all
end

-- The leases set's pin: a member no task id can be (it starts with a control character), longer
-- than zset-max-listpack-value (64 bytes by default), scored +inf. Redis keeps a sorted set of up
-- to 128 short members in its listpack encoding, where every ZADD and ZREM walks the whole set and
-- parses each score; with the pin the set takes the skiplist encoding from its first ZADD and keeps
-- it (docs/redis.md, "The leases set's encoding"). Readers count and list the finite scores only.
-- A set left with its pin alone goes (drop_empty_leases()) after an exchange that ended leases,
-- reserved none and did not park, a cancel, a sweep, or a worker leaving.
local LEASE_PIN = '\1pin: keeps this set in its skiplist encoding; never a task id (docs/redis.md)'

-- Adds leases (score, id, score, id, …) to the queue's set, with its pin.
local function add_leases(queue, zadd)
  local k = key(queue, 'leases')
  if #zadd <= PIECE then
    rcall('ZADD', k, '+inf', LEASE_PIN, unpack(zadd))
  else
    rcall('ZADD', k, '+inf', LEASE_PIN)
    rcall_list('ZADD', k, zadd)
  end
end

-- How many leases the queue holds (its pin not counted).
local function lease_count(queue)
  return rcall('ZCOUNT', key(queue, 'leases'), '-inf', '(+inf')
end

-- Deletes the leases set when it holds no lease, only its pin. Returns how many it holds.
local function drop_empty_leases(queue)
  local n = lease_count(queue)
  if n == 0 then rcall('DEL', key(queue, 'leases')) end
  return n
end

-- Removes the leases of `ids` (a list).
local function drop_leases(queue, ids)
  rcall_list('ZREM', key(queue, 'leases'), ids)
end

-- Wakes one blocked worker of a queue (workers BLPOP the wake list).
local function wake(queue)
  rcall('LPUSH', key(queue, 'wake'), '1')
end

-- The limits of a decoded `lim` that read as limits (`c` a whole number, `r` [max, per] whole
-- numbers, per > 0); nil when none does. One written by something other than worq binds nothing,
-- rather than fail every call that reads it (readableLimit() in queue-records.ts).
local function readable_limits(l)
  local out
  for name, spec in pairs(l) do
    if type(name) == 'string' and type(spec) == 'table' then
      local c, r = spec.c, spec.r
      local c_ok = c == nil or (type(c) == 'number' and c >= 0 and c % 1 == 0)
      local r_ok = r == nil or (type(r) == 'table' and type(r[1]) == 'number' and r[1] >= 0 and
        r[1] % 1 == 0 and type(r[2]) == 'number' and r[2] >= 1 and r[2] % 1 == 0)
      if c_ok and r_ok and (c ~= nil or r ~= nil) then
        out = out or {}
        out[name] = spec
      end
    end
  end
  return out
end

-- Queue settings (hash `conf`), read once per queue and call; absent fields take the defaults of
-- DEFAULT_SETTINGS in rules.ts. `lim` is the limits JSON ({name: {c = concurrency, r = {max,
-- per}}}), decoded only when the queue has any.
local confs
local function conf(queue)
  local c = confs[queue]
  if c then return c end
  c = { paused = false, events = true, evmax = 10000, metrics = true, listing = true,
    csize = 10000, cttl = 3600000 }
  local flat = rcall('HGETALL', key(queue, 'conf'))
  for i = 1, #flat, 2 do
    local f, v = flat[i], flat[i + 1]
    if f == 'paused' or f == 'events' or f == 'metrics' or f == 'listing' then
      c[f] = v == '1'
    elseif f == 'lim' then
      local ok, l = pcall(cjson.decode, v)
      if ok and type(l) == 'table' then c.limits = readable_limits(l) end
    else
      c[f] = tonumber(v) or c[f]
    end
  end
  confs[queue] = c
  return c
end
