--[[ common.lua: helpers shared by every operation (scripts.ts puts them first, then ready.lua,
  then the operations). Each operation is the body of a function of (keys, args) that starts with
  begin(args) (ready.lua): the state of one call below lives in upvalues, which a Redis function
  library keeps between calls, so begin() resets all of it.
  Every operation takes args[1] = the key namespace ('worq') and args[2] = its queue, and reads its
  arguments as ARGV.

  A task record (key t:<id>, a string) is
      <state><attempts made>:<header JSON>\n<payload>
  state 'P' = pending (waits for Deferred arguments), 'E' = enqueued, delayed or processing (the
  tokens hash tells processing apart). When the task ends the same key holds its outcome string
  (first character c, f, x or k; JSON, so no newline), then '\n', the tag of the token whose finish
  stored it ('' when no finish did: an expiry, a cancel, a failed argument), '\n' and the task's
  generation, with a PX of resultTimeout, or is deleted (ignoreResult). The generation lets a
  resent enqueue of the same call recognise a task that has already ended (held() in enqueue.lua),
  the tag a resent exchange its own finish (finished_by()); readers strip both
  (stored_outcome()).
  Header fields: n name, c client id (results kept), r resultTimeout, i ignoreResult, h heartrate,
  a attempts allowed, b backoff {type, delay, jitter, maxDelay}, d deps {{queue, id}, ...},
  o 'p' when onError is 'pass', u runAt, e enqueued at, g generation (unique per enqueue), f the
  tag of the token whose finish put it back for another attempt (requeue()).
  Dependents of a task (hash `dependents`, field = the task id) are lines
  "<queue>\t<id>\t<slot>\t<generation>\n" (ids and queue names hold no control characters).
]]
-- The current call's arguments, key namespace and queue.
local ARGV, PREFIX, QUEUE

-- Mirrors keys.ts queueKey(): worq:{<queue>}:<suffix>.
local function key(queue, suffix)
  return PREFIX .. ':{' .. queue .. '}:' .. suffix
end

-- The key of a task's record: key(queue, 't:' .. id) in one concatenation (hot paths).
local function record(queue, id)
  return PREFIX .. ':{' .. queue .. '}:t:' .. id
end

local now_ms
-- Server time in ms (one TIME per script call, taken lazily).
local function now()
  if not now_ms then
    local t = redis.call('TIME')
    now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  end
  return now_ms
end

-- A lease's length for a heartrate: leaseMs() of backend.ts (2 × heartrate + LEASE_GRACE_MS).
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

-- backoffDelay() of backend.ts.
local function backoff_delay(b, attempt, r)
  local ms = b[2]
  if b[1] == 'exponential' then ms = b[2] * 2 ^ (attempt - 1) end
  if b[4] > 0 and ms > b[4] then ms = b[4] end
  return math.floor(ms * (1 - b[3] * r) + 0.5)
end

local function expired_outcome(name, queue, id, reason, attempts)
  return 'x' .. cjson.encode({ taskName = name, queue = queue, taskId = id, reason = reason,
    attempts = attempts })
end

local function cancelled_outcome(name, queue, id)
  return 'k' .. cjson.encode({ taskName = name, queue = queue, taskId = id })
end

-- Wakes one blocked worker of a queue (workers BLPOP the wake list).
local function wake(queue)
  redis.call('LPUSH', key(queue, 'wake'), '1')
end

-- Earliest due time of each queue's delayed set seen by this script call (false: empty).
local earliest
local function earliest_due(queue)
  if earliest[queue] == nil then
    local first = redis.call('ZRANGE', key(queue, 'delayed'), 0, 0, 'WITHSCORES')
    earliest[queue] = first[2] and tonumber(first[2]) or false
  end
  return earliest[queue]
end

-- Ids made ready per queue during this call, pushed by flush_ready() in one LPUSH per queue.
local ready, ready_order

-- Puts an enqueued task in line: the delayed set until run_at, else the wait list.
local function make_ready(queue, id, run_at)
  if run_at and run_at > 0 and run_at > now() then
    local first = earliest_due(queue)
    redis.call('ZADD', key(queue, 'delayed'), run_at, id)
    if not first or run_at < first then
      earliest[queue] = run_at
      -- A new earliest due time: let a blocked worker shorten its wait. The key is kept briefly.
      wake(queue)
      redis.call('PEXPIRE', key(queue, 'wake'), 10000)
    end
    return
  end
  local list = ready[queue]
  if not list then
    list = {}
    ready[queue] = list
    ready_order[#ready_order + 1] = queue
  end
  list[#list + 1] = id
end

-- The calling client's id when the script returns that client's outcomes in its reply instead of
-- publishing them (exchange.lua and enqueue.lua set it); nil: every outcome is published.
local SELF
-- Outcomes for SELF, returned in the reply: {queue, id, outcome, queue, id, outcome, ...}.
local mine
-- Outcomes to publish, per client, laid out like `mine`.
local outbox
local function deliver(client, queue, id, outcome)
  local box
  if client == SELF then
    box = mine
  else
    box = outbox[client]
    if not box then
      box = {}
      outbox[client] = box
    end
  end
  box[#box + 1] = queue
  box[#box + 1] = id
  box[#box + 1] = outcome
end

-- One PUBLISH per client that has outcomes.
local function flush_outbox()
  for client, box in pairs(outbox) do
    redis.call('PUBLISH', PREFIX .. ':out:' .. client, cjson.encode(box))
  end
  outbox = {}
end

-- The outcome part of a stored outcome (its tag and generation stripped).
local function stored_outcome(v)
  return string.match(v, '^[^\n]*')
end

-- A generation fit to store after an outcome and in the tokens hash ('' when not).
local function clean_gen(g)
  if type(g) == 'string' and not string.find(g, '[|\n]') then return g end
  return ''
end

-- The fields of a tokens hash value, "<attempt>|<has slots 0/1>|<heartrate>|<keep ms>|<client>|
-- <generation>|<token>" (the middle four are an enqueue's meta, as it came), as strings: attempt,
-- keep, has slots, client, generation, token, heartrate (nothing for a value of another shape).
local function read_held(v)
  local attempt, slots, heartrate, keep, client, gen, token =
    string.match(v, '^(%d+)|(%d)|(%d+)|(%d+)|([^|]*)|([^|]*)|(.*)$')
  return attempt, keep, slots, client, gen, token, heartrate
end

-- The worker a token was given to: tokens are "<worker id>:<8 characters>[p[<k>]].<n>" (p: handed
-- over under a park; k: how many that park had handed over before).
local function token_worker(token)
  return string.match(token, '^(.*):[^:]*$')
end

-- What a stored outcome keeps of the token whose finish stored it, "<8 characters>[p[<k>]].<n>":
-- it tells that call's reservations apart from any other's.
local function token_tag(token)
  return string.match(token, '[^:]*$')
end

-- True when the task's record holds an outcome that a finish with `token` stored: a finish this
-- very exchange made before (its reply was lost and ioredis sent the call again).
local function finished_by(queue, id, token)
  local v = redis.call('GET', record(queue, id))
  if not v or is_live(v) then return false end
  local tag = string.match(v, '^[^\n]*\n([^\n]*)\n')
  return tag ~= nil and tag ~= '' and tag == token_tag(token)
end

-- True when the task is back in line for another attempt by a finish with `token` (its header's
-- `f`, requeue()): a retry this very exchange made before (its reply was lost, the call resent).
local function requeued_by(queue, id, token)
  local v = redis.call('GET', record(queue, id))
  if not v or string.sub(v, 1, 1) ~= 'E' then return false end
  local ok, _, h = pcall(parse_made, v)
  return ok and type(h) == 'table' and h.f ~= nil and h.f == token_tag(token)
end

-- Stores a task's outcome with the tag of the finishing token (`tag`, nil for none) and its
-- generation for `keep` ms and delivers it to `client`, or drops the record when nothing is kept.
local function store(queue, id, outcome, keep, client, gen, tag)
  if keep > 0 then
    redis.call('SET', record(queue, id), outcome .. '\n' .. (tag or '') .. '\n' .. gen, 'PX', keep)
    if client and client ~= '' then deliver(client, queue, id, outcome) end
  else
    redis.call('DEL', record(queue, id))
  end
end

-- Ends tasks for good. Stores (or drops) the outcome (with the task's generation `gen`, and the tag
-- of the finishing token `tag` when a finish ends it), delivers it, and fills or fails the
-- dependents, down the whole graph. `dependents` is the task's dependents text when the caller
-- already read it (false: none), nil to read (and delete) it here.
-- Depth first, in the order the dependents were registered, as memory:// does: a dependent that
-- fails with the task ends, with everything under it, before the task's next dependent is filled,
-- so tasks a cascade makes ready join the line in the same order on both backends, and a dependent
-- that waits on the task in two slots ends once. Iterative (a stack of the tasks whose dependents
-- are being gone through), so a deep graph does not deepen Lua's call stack.
local function settle(queue, id, outcome, keep, client, has_slots, dependents, gen, tag)
  if dependents == false and not has_slots then
    -- The common case: no dependents, no argument slots, no work list.
    store(queue, id, outcome, keep, client, gen, tag)
    return
  end
  local stack = {}
  local function ends(q, tid, out, kept, cl, slots, deps, g, t)
    store(q, tid, out, kept, cl, g, t)
    if slots then redis.call('DEL', key(q, 's:' .. tid)) end
    if deps == nil then
      deps = redis.call('HGET', key(q, 'dependents'), tid)
      if deps then redis.call('HDEL', key(q, 'dependents'), tid) end
    end
    if deps then
      stack[#stack + 1] = { out = out, failing = string.sub(out, 1, 1) ~= 'c',
        lines = string.gmatch(deps, '([^\t]*)\t([^\t]*)\t(%d+)\t([^\n]*)\n') }
    end
  end
  ends(queue, id, outcome, keep, client, has_slots, dependents, gen, tag)
  while #stack > 0 do
    local top = stack[#stack]
    local dq, did, slot, dgen = top.lines()
    if not dq then
      stack[#stack] = nil
    else
      local dkey = record(dq, did)
      local rec = redis.call('GET', dkey)
      if rec and string.sub(rec, 1, 1) == 'P' then
        local _, _, h = parse(rec)
        if h.g == dgen then
          if top.failing and h.o ~= 'p' then
            redis.call('SREM', key(dq, 'pending'), did)
            ends(dq, did, top.out, keep_ms(h), h.c, true, nil, clean_gen(h.g))
          else
            local skey = key(dq, 's:' .. did)
            redis.call('HSET', skey, slot, top.out)
            if redis.call('HINCRBY', skey, 'm', -1) == 0 then
              redis.call('SREM', key(dq, 'pending'), did)
              redis.call('SETRANGE', dkey, 0, 'E')
              make_ready(dq, did, h.u)
            end
          end
        end
      end
    end
  end
end

-- Cancels a pending or enqueued task that is not processing. With `unlinked`, the caller already
-- took it out of its lines. Returns true when it was cancelled.
local function cancel_one(queue, id, unlinked)
  local rec = redis.call('GET', record(queue, id))
  if not rec or not is_live(rec) then return false end
  local state, _, h = parse(rec)
  if state == 'P' then
    if not unlinked then redis.call('SREM', key(queue, 'pending'), id) end
  else
    if redis.call('HEXISTS', key(queue, 'tokens'), id) == 1 then return false end
    if not unlinked and redis.call('ZREM', key(queue, 'delayed'), id) == 0 then
      redis.call('LREM', key(queue, 'wait'), 1, id)
    end
  end
  settle(queue, id, cancelled_outcome(h.n, queue, id), keep_ms(h), h.c, h.d ~= nil, nil,
    clean_gen(h.g))
  return true
end

-- True when a decoded header has the fields the scripts compute with, of the right types.
-- Ranges as well as types: a value Redis or Node would choke on later (a fractional PX, a negative
-- heartrate, a timer past 2^31 ms, deps that are not pairs of strings) makes the record unreadable.
local MAX_MS = 2147483647
local function whole(v, min)
  return type(v) == 'number' and v == math.floor(v) and v >= min and v <= MAX_MS
end
local function valid_deps(d)
  if d == nil then return true end
  if type(d) ~= 'table' then return false end
  for _, ref in ipairs(d) do
    if type(ref) ~= 'table' or type(ref[1]) ~= 'string' or type(ref[2]) ~= 'string' then
      return false
    end
  end
  return #d > 0
end
local function valid_header(h)
  return type(h) == 'table' and type(h.n) == 'string' and whole(h.h, 1) and whole(h.r, 1) and
    whole(h.a, 1) and type(h.b) == 'table' and whole(h.b[2], 0) and type(h.b[3]) == 'number' and
    h.b[3] >= 0 and h.b[3] <= 1 and whole(h.b[4], 0) and valid_deps(h.d) and
    (h.x == nil or (type(h.x) == 'table' and (h.x.timeout == nil or whole(h.x.timeout, 0))))
end

-- Ends an unreadable task record as a failed outcome (remote BadMessage) kept for an hour; no client
-- can be told (its id is in the unreadable header), but status() and waiters that poll see it.
local function bad_message(queue, id, h, why)
  local name = (type(h) == 'table' and type(h.n) == 'string') and h.n or '?'
  local failure = { json = { taskName = name, queue = queue, taskId = id, attempts = 1,
    remote = { name = 'BadMessage', code = 'ERR_WORQ_BAD_MESSAGE', message = why } } }
  redis.call('SET', record(queue, id), 'f' .. cjson.encode(failure), 'PX', 3600000)
end

-- Puts a reserved task that never started back first in line (the pop end of the wait list). Its
-- record still counts the attempts made before this reservation, so the attempt is not counted.
local function release(queue, id)
  if redis.call('RPUSH', key(queue, 'wait'), id) == 1 then wake(queue) end
end

-- Rewrites a record for another attempt: attempts made = `attempt`, runAt = `run_at`.
local function requeue(queue, id, attempt, run_at, tag)
  local tkey = record(queue, id)
  local rec = redis.call('GET', tkey)
  local _, _, h, colon, nl = parse(rec)
  h.u = run_at
  h.f = tag
  redis.call('SET', tkey, 'E' .. attempt .. ':' .. cjson.encode(h) .. string.sub(rec, nl))
  make_ready(queue, id, run_at)
end

-- Starts a call: its arguments, and a fresh state for everything above that lives for one call.
local function begin_common(args)
  ARGV, PREFIX, QUEUE = args, args[1], args[2]
  now_ms, SELF = nil, nil
  earliest, ready, ready_order, mine, outbox = {}, {}, {}, {}, {}
end
