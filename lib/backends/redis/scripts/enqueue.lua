--[[ enqueue.lua: stores a batch of new tasks, each atomically, and puts each in line.
  KEYS: none declared; the queue's keys are built from ARGV[1..2] (key() in common.lua), and a
        Deferred argument's record may live on another queue.
  ARGV[1]  key namespace ('worq')
  ARGV[2]  queue
  ARGV[3]  number of tasks n, then 8 slots per task:
    id, runAt (epoch ms, 0 = now), keep (ms the outcome is kept, 0 = ignoreResult),
    client (id whose channel gets the outcome, '' = none), pass ('1' when onError is 'pass'),
    gen (unique per enqueue), deps ("<queue>\t<id>\n" per Deferred argument, '' = none),
    body ("0:<header JSON>\n<payload>": the record without its state character)
  Returns: an array of n integers: 1 stored, 0 duplicate (a live task holds the id).
  A task whose id is held by a live record with the same gen is reported stored (a resent call).
  A task with deps: each finished argument's outcome is copied into its slot (a failure with
  onError 'fail' fails the task at once with that outcome; an unknown argument counts as expired);
  for each live argument the task registers as a dependent and stays pending.
]]
local n = tonumber(ARGV[3])
local results = {}
local reason = 'the argument task and its result are gone (its resultTimeout passed)'

-- 'dup', 'ok' (same gen: a resent call) or nil (free) for a live record holding the id.
local function held(rec, gen)
  if not rec or not is_live(rec) then return nil end
  if string.find(rec, '"g":"' .. gen .. '"', 1, true) then return 'ok' end
  return 'dup'
end

for t = 0, n - 1 do
  local base = 4 + t * 8
  local id, run_at, keep = ARGV[base], tonumber(ARGV[base + 1]), tonumber(ARGV[base + 2])
  local client, pass, gen = ARGV[base + 3], ARGV[base + 4] == '1', ARGV[base + 5]
  local deps, body = ARGV[base + 6], ARGV[base + 7]
  local tkey = key(QUEUE, 't:' .. id)
  local result = 1
  if deps == '' then
    if not redis.call('SET', tkey, 'E' .. body, 'NX') then
      local h = held(redis.call('GET', tkey), gen)
      if h then
        if h == 'dup' then result = 0 end
        run_at = nil
      else
        redis.call('SET', tkey, 'E' .. body)
      end
    end
    if run_at then make_ready(QUEUE, id, run_at) end
  else
    local h = held(redis.call('GET', tkey), gen)
    if h then
      if h == 'dup' then result = 0 end
    else
      local slots, missing, failed, slot = {}, 0, nil, 0
      for dq, did in string.gmatch(deps, '([^\t]*)\t([^\n]*)\n') do
        local akey = key(dq, 't:' .. did)
        local arg = redis.call('GET', akey)
        if arg and is_live(arg) then
          local dkey = key(dq, 'dependents')
          local line = QUEUE .. '\t' .. id .. '\t' .. slot .. '\t' .. gen .. '\n'
          redis.call('HSET', dkey, did, (redis.call('HGET', dkey, did) or '') .. line)
          missing = missing + 1
        else
          local out = arg or expired_outcome('unknown', dq, did, reason)
          if string.sub(out, 1, 1) ~= 'c' and not pass then
            failed = out
            break
          end
          slots[#slots + 1] = slot
          slots[#slots + 1] = out
        end
        slot = slot + 1
      end
      if failed then
        settle(QUEUE, id, failed, keep, client, false, false)
      else
        redis.call('HSET', key(QUEUE, 's:' .. id), 'm', missing, unpack(slots))
        if missing > 0 then
          redis.call('SET', tkey, 'P' .. body)
          redis.call('SADD', key(QUEUE, 'pending'), id)
        else
          redis.call('SET', tkey, 'E' .. body)
          make_ready(QUEUE, id, run_at)
        end
      end
    end
  end
  results[#results + 1] = result
end
flush_ready()
flush_outbox()
return results
