--[[ exchange.lua: finish-and-fetch. Finishes a worker's ended tasks, promotes due delayed tasks,
  then reserves up to `max` ready tasks, in one call; parks the worker when fewer were ready.
  KEYS[1]  a key of the queue (its slot)
  ARGV[1]  key namespace ('worq')
  ARGV[2]  queue
  ARGV[3]  nonce: unique per call; token of the i-th reservation = nonce .. '.' .. i
  ARGV[4]  max: how many tasks to reserve
  ARGV[5]  '1' when the caller was woken by a wake marker (then it passes the wake on if it leaves
           ready work behind)
  ARGV[6]  the caller's client id: outcomes of tasks it enqueued come back in the reply instead of
           being published ('' = publish all)
  ARGV[7]  worker id
  ARGV[8]  park ms: when fewer than `max` were ready, hold the slots left (max - reserved, at most
           ARGV[9]) for handover (hand_over() in ready.lua) for this long at most (0 = do not park)
  ARGV[9]  park slots: the most tasks to hand over
  ARGV[10] the wait- and run-time histogram counts of the runs reported here, as the worker
           measured them: "<field>=<n>,…" (fields of observe.lua: w<b>, ws, t<b>, ts; '' = none).
           Counted less the times of the finishes refused (each finish's own, below): a run counts
           once, in the call that ended it (a refused finish's run was ended by the sweep, or by
           this very call before it was resent), save a run a cancel ended, which its worker's
           refused finish counts (the cancel counts none, store.lua).
  ARGV[11] number of finishes f, then 4 slots per finish:
    id, token, outcome (the outcome string; for a retry, the failure that caused it), retryAt
    (epoch ms, '' = finish for good, 'release' = never started: back first in line, its attempt
    uncounted)
  ARGV[12 + 4f] when f > 1: the wait and run times (ms) of each finish, in order, as the worker
           measured them: "<wait>,<run>;" per finish ('' for a time it has none of, as in a
           release); read only to take a refused finish's share back from ARGV[10] (when f = 1,
           its share is all of ARGV[10])
  A paused queue reserves nothing and parks nobody (finishes are applied; wake markers are dropped
  so that blocked workers wait for the resume's).
  A call that reserved tasks, finished an ignoreResult task (whose record goes), or counted the
  times of a run a cancel ended (nothing marks that count), leaves a memo
  `l:<worker>`: its nonce, a newline, then JSON of its stale ids and the ids and tokens it
  reserved, PX the longest lease among those it gave and those it ended, deleted by the worker's
  next call that neither reserves nor ends such a task. The same call resent (same nonce) is
  answered from it.
  Returns one flat array (append() in outbox.lua): reserved, stale, mine, owed, texts, then
  #stale, #mine, #owed, #texts and nextDueIn
    stale     ids whose token no longer matched (lease lost): refused, nothing changed. A finish
              for good whose task's stored outcome carries this token's tag (this very call
              applied it before: a resend, ioredis sending the call again after its reply was lost;
              or a cancel ended that run), or a retry whose task's record does (header `f`), is not
              stale. A release is never stale: refused or not, the task never started.
    reserved  5 entries per task: id, token, attempt, record, slots ('' or the flat field/value
              list); after those reserved now, any handed over to the worker as JSON (by a process
              of an earlier version) and not yet popped by it
    nextDueIn ms until the earliest delayed task is due when fewer than `max` were reserved, else -1
    mine      outcomes for the caller's client: queue, id, outcome, queue, id, outcome, ...
    owed      hand-overs to dependents on other queues (outbox.lua: field, value, …), SPLIT calls
              only
    texts     handover messages as text (handover_text() in ready.lua) taken from the worker's
              list, each passed on as it is: more reserved tasks
]]
local tokens, leases = key(QUEUE, 'tokens'), key(QUEUE, 'leases')
local wait, delayed = key(QUEUE, 'wait'), key(QUEUE, 'delayed')
local nonce, max, woken = ARGV[3], num(ARGV[4]), ARGV[5] == '1'
if ARGV[6] ~= '' then SELF = ARGV[6] end
local worker, park, park_slots = ARGV[7], num(ARGV[8]), num(ARGV[9])
CALLER = worker
local nf = num(ARGV[11])
local stale = {}
-- The finishes refused whose run counts elsewhere (i -> true): their times are taken back from
-- ARGV[10] below.
local uncounted
-- The longest lease among the tasks this call finished and dropped (ignoreResult: no outcome is
-- kept, so nothing would mark the finish for a resend), and those whose cancelled run's times it
-- counted: the memo below then stays that long.
local dropped = 0
local parked = key(QUEUE, 'parked')
-- True when this call removed leases and so may leave the set with its pin alone (common.lua).
local unleased = false

-- This very call again (ioredis resends a command whose reply was lost with its connection): its
-- finishes and reservations were made by the first run, which left a memo (below). Answer as that
-- run did, with the reservations still held under their tokens; outcomes the lost reply carried
-- reach their waiters through the re-check every reconnect makes.
local memo_key = key(QUEUE, 'l:' .. worker)
local memo = rcall('GET', memo_key)
if memo and string.sub(memo, 1, #nonce + 1) == nonce .. '\n' then
  local first = cjson.decode(string.sub(memo, #nonce + 2))
  local again = {}
  for i = 1, #first[2] - 1, 2 do
    local id, token = first[2][i], first[2][i + 1]
    local v = rcall('HGET', tokens, id)
    local held = v and read_held(v)
    local rec = held and held.token == token and rcall('GET', record(QUEUE, id))
    if rec then
      local n = #again
      again[n + 1] = id
      again[n + 2] = token
      again[n + 3] = tonumber(held.attempt)
      again[n + 4] = rec
      again[n + 5] = has(held.flags, 's') and rcall('HGETALL', key(QUEUE, 's:' .. id)) or
        NO_SLOTS
    end
  end
  local n_stale = append(again, first[1])
  local n = #again
  again[n + 1], again[n + 2], again[n + 3], again[n + 4], again[n + 5] = n_stale, 0, 0, 0, -1
  return again
end

if nf > 0 then
  local ids, fields = {}, {}
  for i = 1, nf do
    ids[i] = ARGV[8 + i * 4]
    fields[2 * i - 1] = ids[i]
    fields[2 * i] = 'p:' .. ids[i]
  end
  local held = rcall_read('HMGET', tokens, fields)
  local deps = rcall_read('HMGET', key(QUEUE, 'dependents'), ids)
  -- Listed tasks leave the listing when their outcome expires (store.lua, listing.lua); with
  -- listing off, the sweep's scan drops what was listed before.
  local listing = conf(QUEUE).listing
  local gone, had_deps = {}, {}
  for i = 1, nf do
    local base = 8 + i * 4
    local id, token, outcome, retry_at = ids[i], ARGV[base + 1], ARGV[base + 2], ARGV[base + 3]
    local v = held[2 * i - 1]
    local plain = retry_at == '' and v and not deps[i] and
      end_plain(QUEUE, id, outcome, token, v, held[2 * i] or nil)
    local h = not plain and v and read_held(v)
    if plain then
      -- Ended the common way (store.lua): its tokens fields go below.
      gone[#gone + 1] = id
      gone[#gone + 1] = 'p:' .. id
    elseif not h or h.token ~= token then
      -- Refused. Reported, unless this very call finished or retried it already (its reply lost,
      -- the call resent), a cancel ended the run, or it is a release: a task that never started
      -- lost no run, whoever holds it now (and a release leaves no mark a resend could recognise).
      -- Its times count only when a cancel ended the run (store.lua): any other refused run was
      -- counted by the call that ended it. A resend of this call is then answered from the memo.
      local ended = retry_at ~= 'release' and finished_by(QUEUE, id, token)
      if ended and string.byte(ended, 1) == 107 then -- 'k'
        local heartrate = string.match(ended, '\nH[^\n]-"h":(%d+)')
        dropped = math.max(dropped, lease_ms(tonumber(heartrate) or 10000))
      else
        uncounted = uncounted or {}
        uncounted[i] = true
        local quiet = retry_at == 'release' or ended or
          (retry_at ~= '' and requeued_by(QUEUE, id, token))
        if not quiet then stale[#stale + 1] = id end
      end
    else
      gone[#gone + 1] = id
      gone[#gone + 1] = 'p:' .. id
      if retry_at == 'release' then
        if h.holds then free_slots(QUEUE, id, h.name) end
        released(QUEUE, id, h)
      elseif retry_at ~= '' then
        local at = tonumber(retry_at)
        if h.holds then free_slots(QUEUE, id, h.name) end
        requeue(QUEUE, id, h.attempt, at, token_tag(token))
        if events_on(QUEUE) then
          event(QUEUE, 'retrying', id, h.head, { d = math.max(0, at - now()),
            e = outcome ~= '' and outcome_error(outcome) or nil })
        end
        count(QUEUE, 'r', 1)
      else
        if deps[i] then had_deps[#had_deps + 1] = id end
        settle(QUEUE, id, outcome, { held = h, deps = all_dependents(QUEUE, id, deps[i]) or false,
          tag = token_tag(token),
          progress = held[2 * i] or nil })
        if h.keep == '0' then dropped = math.max(dropped, lease_ms(tonumber(h.heartrate))) end
      end
    end
  end
  if #gone > 0 then
    rcall_list('HDEL', tokens, gone)
    local only = {}
    for i = 1, #gone, 2 do only[#only + 1] = gone[i] end
    rcall_list('ZREM', leases, only)
    unleased = true
  end
  if #had_deps > 0 then rcall_list('HDEL', key(QUEUE, 'dependents'), had_deps) end
  if listing then lc_step(QUEUE, 4 * nf + 100) end
end
if ARGV[10] ~= '' and conf(QUEUE).metrics and not (uncounted and nf == 1) then
  for field, n in string.gmatch(ARGV[10], '([wt][%ds]%d*)=(%d+)') do
    count(QUEUE, field, num(n))
  end
  if uncounted then
    local i = 0
    for w, t in string.gmatch(ARGV[12 + 4 * nf] or '', '([^,;]*),([^;]*);') do
      i = i + 1
      if uncounted[i] then
        if w ~= '' then uncount_time(QUEUE, 'w', tonumber(w)) end
        if t ~= '' then uncount_time(QUEUE, 't', tonumber(t)) end
      end
    end
  end
end

-- Promote due delayed tasks (FIFO by due time), looking at the earliest one first.
local first = earliest_due(QUEUE)
if first and first <= now() then
  local due = rcall('ZRANGE', delayed, '-inf', now_str(), 'BYSCORE', 'LIMIT', '0', '1000')
  rcall('ZREM', delayed, unpack(due))
  for _, m in ipairs(due) do
    local id, prio = split_member(m)
    make_ready(QUEUE, id, 0, prio)
  end
  earliest[QUEUE] = nil
end
flush_ready()

local reserved, longest = {}, 0
local paused = conf(QUEUE).paused
if paused then
  -- Nothing starts: no marker may keep a worker spinning until the resume pushes its own.
  rcall('DEL', key(QUEUE, 'wake'))
elseif max > 0 then
  local popped, drained
  reserved, popped, drained, longest = reserve(QUEUE, max, nonce, from_wait(QUEUE), worker)
  -- Drained: no marker may outlive the ready work. Else pass the wake on: a woken worker that
  -- leaves ready work behind wakes the next one.
  -- A call that popped nothing leaves the markers alone: one may announce a delayed task's due time.
  if popped and (drained or rcall('LLEN', wait) == 0) then
    rcall('DEL', key(QUEUE, 'wake'))
  elseif popped and woken then
    wake(QUEUE)
  end
end

local next_due = -1
local parks = false
if #reserved < 5 * max and not paused then
  local due = earliest_due(QUEUE)
  if due then next_due = math.max(0, due - now()) end
  -- Park: the slots left are filled by the next enqueue, through the worker's handover list,
  -- until the worker's wait would end.
  local slots = math.min(max - #reserved / 5, park_slots)
  if park > 0 and slots > 0 then
    parks = true
    local till = park
    if next_due >= 0 and next_due < till then till = next_due end
    -- "t": handovers as text (handover_text() in ready.lua). A process of an earlier version
    -- cannot read this park and drops it (its enqueue wakes the worker with a marker instead).
    rcall('HSET', parked, worker,
      't' .. digits(slots) .. '|' .. digits(now() + till) .. '|' .. nonce .. 'p')
    -- A park dropped early is harmless (the enqueue wakes the worker with a marker instead): the
    -- hash lives as long as the latest park.
    rcall('PEXPIRE', parked, digits(till + 1000))
  end
end
-- Whatever this worker asked before, it is not waiting now.
if not parks then rcall('HDEL', parked, worker) end
-- Handovers made to this worker since an earlier exchange parked it, while it was too busy to
-- block on its list (it exchanges again as soon as a task ends, and each exchange parks it anew):
-- taken here, so that no handed task waits for the worker's next BLPOP. The worker accepts them
-- beyond `max` (its prefetch holds them until a slot frees).
-- A message as text (handover_text() in ready.lua) goes back as it is, in `texts`: its ids and
-- tokens are read for the memo, its records are not copied out; a JSON one (from a process of an
-- earlier version) is decoded into `reserved`.
local handed = rcall('LPOP', key(QUEUE, 'h:' .. worker), '100')
local texts, text_ids = NONE, NONE
if handed then
  texts, text_ids = {}, {}
  local ids = {}
  for _, message in ipairs(handed) do
    if string.byte(message, 1) == 30 then
      texts[#texts + 1] = message
      local n = #text_ids
      handover_ids(message, text_ids)
      for j = n + 1, #text_ids - 1, 2 do ids[#ids + 1] = text_ids[j] end
    else
      local ok, got = pcall(cjson.decode, message)
      if ok and type(got) == 'table' then
        for j = 1, #got - 4, 5 do
          for k = 0, 4 do reserved[#reserved + 1] = got[j + k] end
          ids[#ids + 1] = got[j]
        end
      end
    end
  end
  -- Their leases were set when they were handed over: the memo lasts as long as the longest that
  -- is left (a second at least), so a worker killed just after this call leaves it no longer.
  -- A task whose lease is gone ended while it waited in the list (a cancel drops the lease): it
  -- is not passed on, so the worker never starts what was cancelled.
  if #ids > 0 then
    local gone
    for i, ends in ipairs(rcall_read('ZMSCORE', leases, ids)) do
      if ends then
        local left = tonumber(ends) - now()
        if left > longest then longest = left end
      else
        gone = gone or {}
        gone[ids[i]] = true
      end
    end
    if gone then
      -- The rare path: the rows reserved here, then the messages' as rows, less the gone.
      local rows = {}
      for _, message in ipairs(texts) do handover_ids(message, rows, true) end
      local kept = {}
      for _, list in ipairs({ reserved, rows }) do
        for i = 1, #list, 5 do
          if not gone[list[i]] then
            for k = 0, 4 do kept[#kept + 1] = list[i + k] end
          end
        end
      end
      reserved, texts = kept, NONE
    end
  end
  if longest < 1000 then longest = 1000 end
end
-- The memo a resend of this call is answered from (above): what it refused and what it reserved,
-- kept as long as those leases (a resend after that finds the tasks swept anyway). A call that
-- dropped a finished task's record leaves one too, for as long as that task's lease: a resend
-- would find nothing else to tell its own finish from a lost lease.
if #reserved > 0 or #text_ids > 0 or dropped > 0 then
  local ids = #text_ids > 0 and text_ids or {}
  for i = 1, #reserved, 5 do
    ids[#ids + 1] = reserved[i]
    ids[#ids + 1] = reserved[i + 1]
  end
  rcall('SET', memo_key, nonce .. '\n' .. cjson.encode({ stale, ids }), 'PX',
    digits(math.max(longest, dropped)))
elseif memo then
  -- A worker's calls follow one another: this one means the last reply arrived.
  rcall('DEL', memo_key)
end
-- Leases reserved here keep the set; else it goes if none is left, unless the worker parked: it
-- waits for work that an enqueue would lease in a set made again (a lone call paid for making the
-- set and dropping it each time), and the sweep, or the worker leaving, drops it at rest.
if unleased and #reserved == 0 and #texts == 0 and not parks then drop_empty_leases(QUEUE) end
flush_all()
local n_stale, n_mine = append(reserved, stale), append(reserved, mine)
local n_owed, n_texts = owed and append(reserved, owed) or 0, append(reserved, texts)
local n = #reserved
reserved[n + 1], reserved[n + 2], reserved[n + 3] = n_stale, n_mine, n_owed
reserved[n + 4], reserved[n + 5] = n_texts, next_due
return reserved
