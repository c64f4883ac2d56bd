--[[ lines.lua: where ready and held-back tasks wait, by priority.
  - `wait` (list): ready tasks of priority 0, LPUSH in, RPOP out (first in first out): the fast path.
  - `prio` (sorted set): ready tasks of any other priority, scored priority × 2^32 + n, n from the
    counter `pseq` (first in first out within a priority); a task put back first in its priority
    (a release, a freed limit slot) is scored priority × 2^32 − n instead. Reserving takes
    priorities below 0 from `prio`, then `wait`, then the rest of `prio` (from_wait() in
    ready.lua). Scores stay exact while n < 2^31.
  - `delayed` (sorted set): tasks held back until their due time (the score); a task with a
    priority is the member "<id>\t<priority>", else "<id>".
]]
local PRIO_UNIT = 4294967296

-- Earliest due time of each queue's delayed set seen by this script call (false: empty).
local earliest
local function earliest_due(queue)
  if earliest[queue] == nil then
    local first = rcall('ZRANGE', key(queue, 'delayed'), '0', '0', 'WITHSCORES')
    earliest[queue] = first[2] and tonumber(first[2]) or false
  end
  return earliest[queue]
end

-- The member of a delayed task.
local function delayed_member(id, prio)
  if prio and prio ~= 0 then return id .. '\t' .. digits(prio) end
  return id
end

-- The id and priority of a delayed member.
local function split_member(m)
  local id, prio = string.match(m, '^(.-)\t(%-?%d+)$')
  if id then return id, tonumber(prio) end
  return m, 0
end

-- Ids made ready per queue during this call: priority 0 in `ready` (pushed by flush_ready() in one
-- LPUSH per queue), others in `ready_prio` as id, priority, id, priority, … (one ZADD).
local ready, ready_prio, ready_order

local function ready_queue(queue)
  local list = ready[queue]
  if not list then
    list = {}
    ready[queue] = list
    ready_prio[queue] = {}
    ready_order[#ready_order + 1] = queue
  end
  return list
end

-- Puts an enqueued task in line: the delayed set until run_at, else the line of its priority.
local function make_ready(queue, id, run_at, prio)
  if run_at and run_at > 0 and run_at > now() then
    local first = earliest_due(queue)
    rcall('ZADD', key(queue, 'delayed'), digits(run_at), delayed_member(id, prio))
    if not first or run_at < first then
      earliest[queue] = run_at
      -- A new earliest due time: let a blocked worker shorten its wait. The key is kept briefly.
      wake(queue)
      rcall('PEXPIRE', key(queue, 'wake'), '10000')
    end
    return
  end
  local list = ready_queue(queue)
  if prio and prio ~= 0 then
    local p = ready_prio[queue]
    p[#p + 1] = id
    p[#p + 1] = prio
  else
    list[#list + 1] = id
  end
end

-- Puts a task back first in its priority's line, at once (not through flush_ready: it is not new
-- work to hand over). True when the queue's lines were empty before (a wake is due).
local function put_first(queue, id, prio)
  if prio and prio ~= 0 then
    local n = rcall('INCR', key(queue, 'pseq'))
    return rcall('ZADD', key(queue, 'prio'), digits(prio * PRIO_UNIT - n), id) == 1 and
      rcall('ZCARD', key(queue, 'prio')) == 1 and
      rcall('LLEN', key(queue, 'wait')) == 0
  end
  return rcall('RPUSH', key(queue, 'wait'), id) == 1 and
    rcall('EXISTS', key(queue, 'prio')) == 0
end

-- The extra fields of a released task's `enqueued` event.
local RELEASED = { r = 1 }

-- Puts a reserved task that never started back first in line (its record still counts the
-- attempts made before this reservation, so the attempt is not counted), with an `enqueued`
-- event that says so (r: released; attempt and worker from the tokens value's head): its
-- `started` event was written at the reservation. `h` is the tokens value (read_held()).
local function released(queue, id, h)
  event(queue, 'enqueued', id, h.head, RELEASED)
  if put_first(queue, id, tonumber(h.prio)) and not conf(queue).paused then wake(queue) end
end

-- Removes a waiting task from whichever line holds it (ready or delayed); false when none did.
local function unline(queue, id, prio)
  if rcall('ZREM', key(queue, 'delayed'), delayed_member(id, prio)) == 1 then return true end
  if prio and prio ~= 0 then return rcall('ZREM', key(queue, 'prio'), id) == 1 end
  return rcall('LREM', key(queue, 'wait'), 1, id) == 1
end

-- (ready and ready_prio hold a queue only once ready_order does: ready_queue().)
local function begin_lines()
  if not earliest then earliest = {} end
  for q in pairs(earliest) do earliest[q] = nil end
  if not ready_order or #ready_order > 0 then ready, ready_prio, ready_order = {}, {}, {} end
end
