--[[ info.lua: what is stored of one task, for TaskInfo.
  KEYS[1]  a key of the queue (its slot)
  ARGV[1]  key namespace ('worq')
  ARGV[2]  queue
  ARGV[3]  task id
  Returns: nil when unknown; else { record, tokens value or false, progress or false, due time
  of a delayed task or false }: an ended record carries its details (common.lua).
]]
local id = ARGV[3]
local rec = rcall('GET', record(QUEUE, id))
if not rec then return nil end
if not is_live(rec) then return { rec, false, false, false } end
local v, p = unpack(rcall('HMGET', key(QUEUE, 'tokens'), id, 'p:' .. id))
local due = false
if not v then
  local ok, _, h = pcall(parse_made, rec)
  if ok and type(h) == 'table' then
    due = rcall('ZSCORE', key(QUEUE, 'delayed'), delayed_member(id, h.p)) or false
  end
end
return { rec, v or false, p or false, due }
