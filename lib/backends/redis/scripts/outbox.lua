--[[ outbox.lua: what a call sends and to whom, and the formats it reads to know: outcomes to
  their callers (in the call's reply, or published), messages to a queue's workers, hand-overs to
  dependents on other slots, the hot calls' one flat reply (append()); the stored outcome and the
  tokens hash value (read_held()) with the token's parts; the checks of a decoded header; and
  begin_common(), the fresh state of a call (common.lua and this file).
]]

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
  if not next(outbox) then return end
  for client, box in pairs(outbox) do
    rcall('PUBLISH', PREFIX .. ':out:' .. client, cjson.encode(box))
  end
  outbox = {}
end

-- Tells the queue's workers (Backend.control): 'c<id>' cancel, 'P' paused, 'R' resumed,
-- 'S' schedules changed.
local function tell(queue, message)
  rcall('PUBLISH', key(queue, 'ctl'), message)
end

-- The outcome part of a stored outcome (its tag, generation and details stripped).
local function stored_outcome(v)
  return string.match(v, '^[^\n]*')
end

-- The generation stored with an ended task ('' when none).
local function stored_gen(v)
  return string.match(v, '^[^\n]*\n[^\n]*\n([^\n]*)') or ''
end

-- A generation fit to store after an outcome and in the tokens hash ('' when not).
local function clean_gen(g)
  if type(g) == 'string' and not string.find(g, '[|\n]') then return g end
  return ''
end

-- A tokens hash value is "<token>|<flags>|<heartrate>|<keep ms>|<client>|<generation>\n<details
-- head>", the details head being "<name>|<enqueued>|<attempts>|<priority>|<started>|
-- <worker>|<attempt>|<holds limit slots 0/1>": the start of the details line its outcome will
-- keep (end_task() in store.lua). Flags: s has argument slots, k has a cache key, m has metadata,
-- q has a priority. HELD splits it: token, flags, heartrate, keep, client, generation, head.
local HELD = '^([^|]*)|(%a*)|(%d+)|(%d+)|([^|]*)|([^|\n]*)\n(.*)$'
local HEAD = '^([^|]*)|(%d+)|(%d+)|(%-?%d+)|(%d+)|([^|]*)|(%d+)|([01])$'

-- All fields of a tokens hash value, as strings (save started, a number, and holds, a boolean);
-- nil for a value of another shape.
local function read_held(v)
  local token, flags, heartrate, keep, client, gen, head = string.match(v, HELD)
  if not token then return nil end
  local name, enq, attempts, prio, started, worker, attempt, holds = string.match(head, HEAD)
  if not name then return nil end
  return { token = token, flags = flags, heartrate = heartrate, keep = keep, client = client,
    gen = gen, head = head, name = name, enq = enq, attempts = attempts, prio = prio,
    started = tonumber(started), worker = worker, attempt = attempt,
    holds = holds == '1' }
end

-- The token of a tokens hash value (the one field renew and cancel need).
local function held_token(v)
  return string.match(v, '^[^|]*')
end

-- True when flags (a tokens value's, or a meta's) has `f`.
local function has(flags, f)
  return string.find(flags, f, 1, true) ~= nil
end

-- The worker a token was given to: tokens are "<worker id>:<8 characters>[p[<k>]].<n>" (p: handed
-- over under a park; k: how many that park had handed over before).
local function token_worker(token)
  return string.match(token, '^(.*):[^:]*$')
end

-- What a stored outcome keeps of the token whose finish stored it, "<8 characters>[p[<k>]].<n>":
-- it tells that call's reservations apart from any other's. (Anchored: an unanchored '[^:]*$'
-- tries every start, a quadratic scan of the worker id.)
local function token_tag(token)
  return string.match(token, '^.*:([^:]*)$') or token
end

-- The task's ended record (its outcome first) when it holds an outcome that a finish with `token`
-- stored (a finish this very exchange made before: its reply was lost and ioredis sent the call
-- again), or that a cancel stored while that token's run was going (the run's late finish changes
-- nothing); else false.
local function finished_by(queue, id, token)
  local v = rcall('GET', record(queue, id))
  if not v or is_live(v) then return false end
  local tag = string.match(v, '^[^\n]*\n([^\n]*)\n')
  return tag ~= nil and tag ~= '' and tag == token_tag(token) and v
end

-- True when the task is back in line for another attempt by a finish with `token` (its header's
-- `f`, requeue()): a retry this very exchange made before (its reply was lost, the call resent).
local function requeued_by(queue, id, token)
  local v = rcall('GET', record(queue, id))
  if not v or string.sub(v, 1, 1) ~= 'E' then return false end
  local ok, _, h = pcall(parse_made, v)
  return ok and type(h) == 'table' and h.f ~= nil and h.f == token_tag(token)
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
    (h.x == nil or (type(h.x) == 'table' and (h.x.timeout == nil or whole(h.x.timeout, 0)))) and
    (h.p == nil or (type(h.p) == 'number' and h.p == math.floor(h.p) and h.p >= -1000000 and
      h.p <= 1000000))
end

--[[ Hand-overs between slots (SPLIT calls only; docs/cluster.md). A call that would touch another
  queue's keys records what it owes that queue in its own queue's `ho` (hash: field -> value) and
  `hos` (sorted set: field -> when the sweep may redo it), and returns the same pairs in its reply
  (`owed`); the caller then hands them over (handover.ts) and drops them with fill.lua, and the
  sweep redoes any still there after HANDOVER_GRACE_MS (its caller died between the steps). Every
  step is idempotent. Fields:
    L\t<id>\t<slot>                 value <queue>\t<id>\t<generation>: task <id> of this queue waits
                                     for that task of another queue in <slot> (link.lua registers it,
                                     or answers with that task's outcome)
    D\t<id>\t<queue>\t<dep id>\t<slot>  value <dep generation>\t<outcome>: task <id> of this queue
                                     ended with <outcome>; dependent <dep id> of <queue> takes it in
                                     <slot> (fill.lua) ]]
local HANDOVER_GRACE_MS = 1000
-- The hand-overs this call owes (field, value, …), made on the first; replies send `owed or NONE`
-- (NONE is never written to), so a call that owes nothing builds no table for it.
local owed
local NONE = {}
local function owe(field, value)
  rcall('HSET', key(QUEUE, 'ho'), field, value)
  rcall('ZADD', key(QUEUE, 'hos'), digits(now() + HANDOVER_GRACE_MS), field)
  owed = owed or {}
  owed[#owed + 1] = field
  owed[#owed + 1] = value
end

-- Appends `list`'s entries to `out`; returns how many. The hot calls (enqueue, exchange) reply
-- with one flat array, the lengths of its parts at its end: Redis turns each table of a reply
-- into RESP at about 3 000 instructions (it looks up seven field names in it first), an entry
-- copied here costs a few dozen.
local function append(out, list)
  local n = #out
  for i = 1, #list do out[n + i] = list[i] end
  return #list
end

-- Starts a call: its arguments, and a fresh state for everything above that lives for one call.
-- A buffer the last call left empty is kept, here and in the other files' begin_*() and flush_*():
-- a table made costs Redis about 760 instructions, and a call leaves most buffers empty. Maps that
-- nearly every call fills (the settings read) are emptied in place.
local function begin_common(args)
  if not rcall then
    string, table, math, cjson, tonumber, unpack, ipairs, pairs, type, rcall, rpcall =
      runtime_globals()
    SMALL = {}
    for i = 0, 255 do SMALL[i] = string.format('%d', i) end
    mine, outbox, confs = {}, {}, {}
  end
  ARGV, QUEUE = args, args[2]
  PREFIX = args[1]
  SPLIT = string.byte(PREFIX, -1) == 33 -- '!'
  if SPLIT then PREFIX = string.sub(PREFIX, 1, -2) end
  now_ms, now_us, now_s, SELF, owed = nil, nil, nil, nil, nil
  if next(mine) then mine = {} end
  if next(outbox) then outbox = {} end
  for q in pairs(confs) do confs[q] = nil end
end
