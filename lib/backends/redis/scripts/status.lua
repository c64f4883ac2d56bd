--[[ status.lua: what is known of one task.
  KEYS[1]  a key of the queue (its slot)
  ARGV[1]  key namespace ('worq')
  ARGV[2]  queue
  ARGV[3]  task id
  Returns: nil when unknown; the outcome string of a finished task ('C' instead of 'c' when it
  came from the cache); 'P' pending; 'E' enqueued, delayed or held; 'R' processing.
]]
local rec = rcall('GET', record(QUEUE, ARGV[3]))
if not rec then return nil end
local state = string.sub(rec, 1, 1)
if state == 'P' then return 'P' end
if state ~= 'E' then
  local out = stored_outcome(rec)
  -- The details' flags: its ninth field.
  local flags = string.match(rec, '^[^\n]*\n[^\n]*\n[^\n]*\n[^\n|]*|[^|]*|[^|]*|[^|]*|[^|]*|' ..
    '[^|]*|[^|]*|[^|]*|([^|\n]*)')
  if flags and string.find(flags, 'C', 1, true) then return 'C' .. string.sub(out, 2) end
  return out
end
if rcall('HEXISTS', key(QUEUE, 'tokens'), ARGV[3]) == 1 then return 'R' end
return 'E'
