--[[ enqueue.lua: stores a batch of new tasks, each atomically, and puts each in line.
  KEYS: none declared; the queue's keys are built from ARGV[1..2] (key() in common.lua), and a
        Deferred argument's record may live on another queue.
  ARGV[1]  key namespace ('worq')
  ARGV[2]  queue
  ARGV[3]  the caller's client id: outcomes of its tasks that end at once (a failed Deferred
           argument) come back in the reply instead of being published ('' = publish them)
  ARGV[4]  number of tasks n, then 4 slots per task:
    id, runAt (epoch ms, 0 = now),
    record ("E0:<header JSON>\n<payload>", or "P0:…" when the task has Deferred arguments),
    "<heartrate>|<keep ms>|<client>|<generation>" (the header's, for a handover without reading
    the header)
  Everything else (generation, client, resultTimeout, onError, the arguments) is read from the
  header, and only on the rare paths that need it: a task with Deferred arguments, an id in use.
  Returns: { codes, mine }
    codes  n integers: 1 stored, 0 duplicate (a live task holds the id)
    mine   outcomes for the caller's client: queue, id, outcome, queue, id, outcome, ...
  A task whose id is held by a live record with the same generation is reported stored (a resent
  call). A task with Deferred arguments: each finished argument's outcome is copied into its slot
  (a failure with onError 'fail' fails the task at once with that outcome; an unknown argument
  counts as expired); for each live argument the task registers as a dependent and stays pending.
]]
if ARGV[3] ~= '' then SELF = ARGV[3] end
local n = tonumber(ARGV[4])
local codes = {}
local records = key(QUEUE, 't:')
local reason = 'the argument task and its result are gone (its resultTimeout passed)'

-- 'dup', 'ok' (same generation: this call, resent after its reply was lost) or nil (free) for
-- the record holding the id. A live record carries its generation in its header; an ended one
-- after its outcome: a resent call finds its task even when it has run and ended since.
local function held(rec, body)
  if not rec then return nil end
  local gen = string.match(body, '"g":"([^"]*)"')
  if not is_live(rec) then
    if gen and gen ~= '' and string.sub(rec, -#gen - 1) == '\n' .. gen then return 'ok' end
    return nil
  end
  if gen and string.find(rec, '"g":"' .. gen .. '"', 1, true) then return 'ok' end
  return 'dup'
end

-- A task with Deferred arguments (rare next to plain calls: its header is decoded here).
local function enqueue_pending(id, run_at, body, tkey)
  local h = held(redis.call('GET', tkey), body)
  if h then return h == 'dup' and 0 or 1 end
  local _, _, header = parse(body)
  local keep, client, pass = keep_ms(header), header.c, header.o == 'p'
  local slots, missing, failed = {}, 0, nil
  for slot, dep in ipairs(header.d) do
    local dq, did = dep[1], dep[2]
    local arg = redis.call('GET', record(dq, did))
    if arg and is_live(arg) then
      local dkey = key(dq, 'dependents')
      local line = QUEUE .. '\t' .. id .. '\t' .. (slot - 1) .. '\t' .. header.g .. '\n'
      redis.call('HSET', dkey, did, (redis.call('HGET', dkey, did) or '') .. line)
      missing = missing + 1
    else
      local out = arg and stored_outcome(arg) or expired_outcome('unknown', dq, did, reason)
      if string.sub(out, 1, 1) ~= 'c' and not pass then
        failed = out
        break
      end
      slots[#slots + 1] = slot - 1
      slots[#slots + 1] = out
    end
  end
  if failed then
    settle(QUEUE, id, failed, keep, client, false, false, clean_gen(header.g))
    return 1
  end
  redis.call('HSET', key(QUEUE, 's:' .. id), 'm', missing, unpack(slots))
  if missing > 0 then
    redis.call('SET', tkey, body)
    redis.call('SADD', key(QUEUE, 'pending'), id)
  else
    redis.call('SET', tkey, 'E' .. string.sub(body, 2))
    make_ready(QUEUE, id, run_at)
  end
  return 1
end

for t = 0, n - 1 do
  local base = 5 + t * 4
  local id, body = ARGV[base], ARGV[base + 2]
  local tkey = records .. id
  local code = 1
  if string.byte(body, 1) == 80 then -- 'P': has Deferred arguments
    code = enqueue_pending(id, tonumber(ARGV[base + 1]), body, tkey)
  elseif redis.call('SET', tkey, body, 'NX') then
    written[id], written_meta[id] = body, ARGV[base + 3]
    make_ready(QUEUE, id, tonumber(ARGV[base + 1]))
  else
    local h = held(redis.call('GET', tkey), body)
    if h == 'dup' then
      code = 0
    elseif not h then
      redis.call('SET', tkey, body)
      written[id], written_meta[id] = body, ARGV[base + 3]
      make_ready(QUEUE, id, tonumber(ARGV[base + 1]))
    end
  end
  codes[t + 1] = code
end
flush_ready()
flush_outbox()
return { codes, mine }
